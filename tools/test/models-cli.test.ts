import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyGguf } from "@potluck/gguf";
import { serveApp } from "@potluck/service";
import { loadSidecarConfig, startSidecarService, type SidecarService } from "@potluck/sidecar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { potluck } from "./helpers/bin.js";

// `potluck models …` run as a user runs it, against two real sidecars on loopback: alpha serves
// the tiny test model (loaded by its own engine, as main.ts does), beta has none of its own.
// "ghost" is on both rosters but not running. A loopback file server stands in for a model host.
interface Running {
  machine: string;
  url: string;
  service: SidecarService;
  close: () => Promise<void>;
}
const running = new Map<string, Running>();
const dirs: string[] = [];
let fileServer: Server;
let fileUrl: string;
const pulledBody = tinyGguf(7);

function directoryFor(self: string) {
  const record = (machine: string) => {
    const r = running.get(machine);
    if (machine === "ghost") return { machine, owner: "home", url: "http://127.0.0.1:9", identityPublicKey: "unused" };
    return r === undefined
      ? undefined
      : { machine, owner: "home", url: r.url, identityPublicKey: r.service.identity.publicKey };
  };
  return {
    peers: async () =>
      ["alpha", "beta", "ghost"]
        .filter((m) => m !== self)
        .map(record)
        .filter((r) => r !== undefined),
    signer: async (machine: string) => (machine === "ghost" ? undefined : record(machine)),
  };
}

async function start(machine: string, models?: []): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), `potluck-models-cli-${machine}-`));
  dirs.push(dataDir);
  const config = loadSidecarConfig(
    { POTLUCK_MACHINE: machine, POTLUCK_DATA_DIR: dataDir, POTLUCK_CPU_PIN: "off", POTLUCK_THREADS: "1" },
    [],
  );
  const service = await startSidecarService(config, {
    nats: null,
    diagnostics: null,
    memory: null,
    directory: directoryFor(machine),
    ...(models === undefined ? {} : { models }),
  });
  await service.warm;
  const served = await serveApp(service.app, { port: 0, hostname: "127.0.0.1" });
  const r = {
    machine,
    url: `http://127.0.0.1:${served.port}`,
    service,
    close: async () => {
      await served.close();
      await service.close();
    },
  };
  running.set(machine, r);
  return r;
}

let alpha: Running;
let beta: Running;
let tinyId: string;

beforeAll(async () => {
  alpha = await start("alpha");
  beta = await start("beta", []);
  tinyId = alpha.service.models[0]!.id;
  // Models load on first use; ls and ps below describe a loaded one (its memory, backend, expiry).
  expect(alpha.service.engine.state(tinyId)?.state).toBe("available");
  await alpha.service.engine.load(alpha.service.models[0]!);
  fileServer = createServer((req, res) => {
    if (req.url?.startsWith("/m/cli-pulled.gguf") !== true) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": String(pulledBody.length), "content-type": "application/octet-stream" });
    res.end(req.method === "HEAD" ? undefined : pulledBody);
  });
  await new Promise<void>((resolve) => fileServer.listen(0, "127.0.0.1", resolve));
  fileUrl = `http://127.0.0.1:${(fileServer.address() as AddressInfo).port}`;
}, 180_000);

afterAll(async () => {
  fileServer?.closeAllConnections();
  await new Promise((resolve) => fileServer?.close(resolve));
  for (const r of running.values()) await r.close().catch(() => undefined);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("potluck models", () => {
  it("ls lists this machine's models; --all every machine's, with where each lives and its state", async () => {
    const here = await potluck("models", "ls", "--url", alpha.url);
    expect(here.code, here.stderr).toBe(0);
    expect(here.stdout).toMatch(new RegExp(`${tinyId}\\s+ready\\s+\\S+\\s+\\S+.*TEST MODEL`));
    const betaHere = await potluck("models", "ls", "--url", beta.url);
    expect(betaHere.stdout).toContain("no models on this machine");
    const all = await potluck("models", "ls", "--all", "--url", beta.url);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`${tinyId}\\s+alpha\\s+ready`));
    expect(all.stdout).toMatch(/ghost: unreachable at \S+/);
    const json = JSON.parse((await potluck("models", "ls", "--all", "--json", "--url", beta.url)).stdout) as {
      data: Array<{ id: string; potluck: { machine: string } }>;
    };
    expect(json.data.find((m) => m.id === tinyId)?.potluck.machine).toBe("alpha");
  });

  it("ps shows what is loaded here, and show one model's fields and machines", async () => {
    const ps = await potluck("models", "ps", "--url", alpha.url);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(/MODEL\s+STATE\s+RAM\s+VRAM\s+BACKEND\s+GPU LAYERS\s+UNLOADS/);
    expect(ps.stdout).toMatch(new RegExp(`${tinyId}\\s+ready`));
    const show = await potluck("models", "show", tinyId, "--url", beta.url);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain("TEST MODEL");
    expect(show.stdout).toMatch(/alpha \(own\): ready/);
    const missing = await potluck("models", "show", "no-such-model", "--url", beta.url);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no machine in the household has a model called");
  });

  it("pull downloads into Potluck's folder (plain progress off a terminal); rm removes only that", async () => {
    const pulled = await potluck("models", "pull", `${fileUrl}/m/cli-pulled.gguf`, "--url", beta.url);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(/downloading .*: 100% /);
    expect(pulled.stdout).not.toContain("\r");
    expect(pulled.stdout).toMatch(/pulled cli-pulled: .* loaded/);
    expect(beta.service.engine.state("cli-pulled")?.state).toBe("ready");
    const show = await potluck("models", "show", "cli-pulled", "--url", beta.url);
    expect(show.stdout).toContain(`pulled from:  ${fileUrl}/m/cli-pulled.gguf`);
    const refused = await potluck("models", "rm", tinyId, "--url", alpha.url);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("was not pulled by Potluck");
    const removed = await potluck("models", "rm", "cli-pulled", "--url", beta.url);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain("removed cli-pulled (cli-pulled.gguf)");
    expect(beta.service.engine.state("cli-pulled")).toBeUndefined();
  });

  it("pull refuses a bad checksum, and flags are strict", async () => {
    const bad = await potluck(
      "models",
      "pull",
      `${fileUrl}/m/cli-pulled.gguf`,
      "--sha256",
      "ab".repeat(32),
      "--url",
      beta.url,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("checksum_mismatch");
    expect(beta.service.engine.state("cli-pulled")).toBeUndefined();
    expect((await potluck("models", "ps", "--all")).code).toBe(2);
    expect((await potluck("models", "ls", "--bogus")).code).toBe(2);
    expect((await potluck("models", "pull", "hf:too/short", "--url", beta.url)).stderr).toContain("ref: expected");
  });
});
