import { join } from "node:path";
import { MemorySearchResponse, MemoryStatus } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LabHost } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import { createMemoryLab, type MemoryLab } from "../../bench/retrieval/lab-sidecar.js";

// Memory across the lab: the real sidecar runs inside "linux"'s namespace; "mac" calls it over
// the WireGuard mesh (potluck0), signing with an identity key on linux's roster. Writes go through
// `potluck memory` on linux's own loopback, as a user would.
const cli = join(repoRoot, "bin/potluck.mjs");

// Each step starts sidecars and CLI processes under tsx; on a loaded 2-core machine one test has
// taken past vitest's 60 s default, so the limit here only catches a hang, never a slow machine.
describe("memory over the lab mesh", { timeout: 10 * 60_000 }, () => {
  let lab: MemoryLab;
  beforeAll(async () => {
    lab = await createMemoryLab();
    await lab.start({ POTLUCK_PEER_MEMORY_ENABLED: "0" });
  }, 20 * 60_000);
  afterAll(async () => {
    await lab?.teardown();
  }, 120_000);

  const potluck = (...args: string[]) => potluckOn(lab.linux, ...args);
  const potluckOn = async (host: LabHost, ...args: string[]) => {
    const result = await host.exec([process.execPath, cli, "memory", ...args], {
      env: { ...process.env, POTLUCK_PORT: "8321" },
      timeoutMs: 120_000,
    });
    expect(result.code, `${host.name}: potluck memory ${args.join(" ")}: ${result.stderr}`).toBe(0);
    return result.stdout;
  };
  const peerSearch = (signed: boolean) => ({
    method: "POST",
    path: "/peer/memory/search",
    body: { query: "where is the router admin page", project: "home" },
    signed,
  });

  it("writes and reads through the CLI on the machine itself", async () => {
    const id = (
      await potluck("add", "The home router admin page is at 192.168.1.1", "--project", "home", "--tags", "network")
    ).trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const temp = (await potluck("add", "a note to delete", "--project", "home")).trim();
    expect(await potluck("search", "router admin page", "--project", "home")).toMatch(/192\.168\.1\.1/);
    await potluck("rm", temp);
    const status = MemoryStatus.parse(JSON.parse(await potluck("status", "--json")));
    expect(status).toMatchObject({
      machine: "linux",
      records: 1,
      peerSearchEnabled: false,
      embedder: { id: "lexical-v1:384" },
    });
  });

  it("refuses off-box callers on /memory* with 403, whatever they send", async () => {
    const answers = await lab.requestsFromMac([
      { method: "POST", path: "/memory", body: { text: "sneaky write" }, signed: true },
      { method: "POST", path: "/memory/search", body: { query: "router" }, signed: true },
      { method: "GET", path: "/memory/status", signed: false },
      { method: "PUT", path: "/memory/peer-search", body: { enabled: true }, signed: true },
    ]);
    expect(answers.map((a) => a.status)).toEqual([403, 403, 403, 403]);
    expect(JSON.stringify(answers[0]?.body)).toMatch(/only served to this machine/);
  });

  it("is 401 unsigned, 503 with the reason when off, then 200 after opting in without a restart", async () => {
    const [unsigned, off] = await lab.requestsFromMac([peerSearch(false), peerSearch(true)]);
    expect(unsigned?.status).toBe(401);
    expect(off?.status).toBe(503);
    expect(JSON.stringify(off?.body)).toMatch(/POTLUCK_PEER_MEMORY_ENABLED=1/);

    // Same process before and after: its uptime keeps growing (a restart would reset it).
    const [healthBefore] = await lab.requestsFromMac([{ method: "GET", path: "/health", signed: false }]);
    expect(await potluck("share", "on")).toMatch(/on/);
    const [on, unsignedAgain, healthAfter] = await lab.requestsFromMac([
      peerSearch(true),
      peerSearch(false),
      { method: "GET", path: "/health", signed: false },
    ]);
    expect(on?.status).toBe(200);
    const body = MemorySearchResponse.parse(on?.body);
    expect(body.hits[0]).toMatchObject({
      machine: "linux",
      record: { text: "The home router admin page is at 192.168.1.1", tags: ["network"] },
    });
    expect(unsignedAgain?.status).toBe(401);
    const uptime = (answer: typeof healthBefore) => (answer?.body as { uptimeS: number }).uptimeS;
    expect(uptime(healthAfter)).toBeGreaterThan(uptime(healthBefore));

    await potluck("share", "off");
    const [offAgain] = await lab.requestsFromMac([peerSearch(true)]);
    expect(offAgain?.status).toBe(503);
  });

  it("fleet search from linux reports mac, which runs no sidecar, as unreachable within the deadline", async () => {
    const out = JSON.parse(
      await potluck("search", "router admin page", "--project", "home", "--fleet", "--deadline-ms", "3000", "--json"),
    ) as unknown;
    const body = MemorySearchResponse.parse(out);
    expect(body.machines.find((m) => m.machine === "linux")?.status).toBe("answered");
    expect(["unreachable", "timeout"]).toContain(body.machines.find((m) => m.machine === "mac")?.status);
    expect(body.hits[0]?.machine).toBe("linux");
  });

  it("fleet search from mac merges linux's hits with its own, and says when linux opts out", async () => {
    await lab.startMac();
    await potluckOn(lab.mac, "add", "The mac mini backs up to the router share every night", "--project", "home");
    await potluck("share", "on");
    const search = async () =>
      MemorySearchResponse.parse(
        JSON.parse(await potluckOn(lab.mac, "search", "router admin page", "--project", "home", "--fleet", "--json")),
      );
    const both = await search();
    expect(Object.fromEntries(both.machines.map((m) => [m.machine, m.status]))).toEqual({
      mac: "answered",
      linux: "answered",
    });
    expect(new Set(both.hits.map((h) => h.machine))).toEqual(new Set(["mac", "linux"]));
    expect(both.hits[0]).toMatchObject({
      machine: "linux",
      record: { text: "The home router admin page is at 192.168.1.1" },
    });
    await potluck("share", "off");
    const alone = await search();
    expect(alone.machines.find((m) => m.machine === "linux")).toMatchObject({ status: "disabled", hits: 0 });
    expect(alone.hits.map((h) => h.machine)).toEqual(["mac"]);
  });
});
