import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { generateIdentity, privateKeyFromPem, signRequest } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLab,
  type Identity,
  type Lab,
  type LabHost,
  type LabProcess,
  pollUntil,
  rosterSidecarPort,
  seedRosterHousehold,
  startRosterSidecar,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// Issue 4 in the household lab: mac (no model) and linux (the tiny TEST model), real sidecars in
// their own network namespaces, talking over the WireGuard mesh with signed requests.

const port = rosterSidecarPort;
const model = "potluck-tiny-test-model-s1-v2";
/** Filled in beforeAll: the key mac signs with, for the hand-made signed calls below. */
const identities = {} as { mac: Identity };
let lab: Lab;
let mac: LabHost;
let linux: LabHost;
const procs = new Map<string, LabProcess>();

async function startSidecar(host: LabHost, env: NodeJS.ProcessEnv): Promise<void> {
  procs.set(host.name, await startRosterSidecar(host, { POTLUCK_CONTEXT_SIZE: "8192", ...env }));
}

beforeAll(async () => {
  lab = await createLab({ hosts: ["mac", "linux"] });
  mac = lab.host("mac");
  linux = lab.host("linux");
  const seeded = seedRosterHousehold([mac, linux]);
  identities.mac = seeded.identities.get("mac")!;
  // mac has no model at all: an empty models directory.
  const noModels = join(mac.runDir, "no-models");
  mkdirSync(noModels, { recursive: true });
  await Promise.all([startSidecar(mac, { POTLUCK_MODELS: noModels }), startSidecar(linux, {})]);
}, 400_000);

afterAll(async () => {
  await lab?.teardown();
});

const potluck = (host: LabHost, args: string[]) =>
  host.exec([process.execPath, join(repoRoot, "bin/potluck.mjs"), ...args], {
    cwd: repoRoot,
    timeoutMs: 180_000,
    env: { POTLUCK_PORT: String(port) },
  });

/** curl inside `host`; returns status and body. */
async function curl(
  host: LabHost,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const argv = ["curl", "-s", "-w", "\n%{http_code}", "-X", options.method ?? "GET"];
  for (const [name, value] of Object.entries(options.headers ?? {})) argv.push("-H", `${name}: ${value}`);
  if (options.body !== undefined) argv.push("-H", "content-type: application/json", "--data-binary", options.body);
  const result = await host.exec([...argv, url], { timeoutMs: 60_000 });
  const lines = result.stdout.split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}

describe("sidecars across the lab mesh", () => {
  it("potluck ask on mac (no model) streams a reply from linux, and the footer names linux", async () => {
    const result = await potluck(mac, ["ask", "--model", model, "--max-tokens", "24", "Hello from the mac"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /— served by linux \(own machine\) · potluck-tiny-test-model-s1-v2 \(TEST MODEL: random weights\) · 24 tokens/,
    );
  }, 200_000);

  it("refuses /v1/* from off the box with a 403 that says why, and still serves /health", async () => {
    const models = await curl(linux, `http://${mac.meshIp}:${port}/v1/models`);
    expect(models.status).toBe(403);
    expect(models.body).toMatch(/only served to this machine/);
    const chat = await curl(linux, `http://${mac.meshIp}:${port}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model, messages: [{ role: "user", content: "x" }] }),
    });
    expect(chat.status).toBe(403);
    expect((await curl(linux, `http://${mac.meshIp}:${port}/health`)).status).toBe(200);
  });

  it("answers unsigned, forged, stale and replayed peer calls with 401 naming the check", async () => {
    const path = "/peer/probe";
    const body = JSON.stringify({ payload: "over the mesh" });
    const url = `http://${linux.meshIp}:${port}${path}`;
    const key = (pem: string) => privateKeyFromPem(pem);
    const codeOf = (r: { status: number; body: string }) => ({
      status: r.status,
      code: (JSON.parse(r.body) as { error?: { code: string } }).error?.code ?? "ok",
    });
    expect(codeOf(await curl(mac, url, { method: "POST", body }))).toEqual({ status: 401, code: "unsigned" });
    const forged = signRequest(
      { method: "POST", path, body, target: "linux" },
      { machine: "mac", privateKey: key(generateIdentity().privateKeyPem) },
    );
    expect(codeOf(await curl(mac, url, { method: "POST", body, headers: forged }))).toEqual({
      status: 401,
      code: "bad_signature",
    });
    const stale = signRequest(
      { method: "POST", path, body, target: "linux" },
      { machine: "mac", privateKey: key(identities.mac.privateKeyPem) },
      { nowMs: Date.now() - 10 * 60_000 },
    );
    expect(codeOf(await curl(mac, url, { method: "POST", body, headers: stale }))).toEqual({
      status: 401,
      code: "stale_timestamp",
    });
    const unknown = signRequest(
      { method: "POST", path, body, target: "linux" },
      { machine: "intruder", privateKey: key(generateIdentity().privateKeyPem) },
    );
    expect(codeOf(await curl(mac, url, { method: "POST", body, headers: unknown }))).toEqual({
      status: 401,
      code: "unknown_key",
    });
    const good = signRequest(
      { method: "POST", path, body, target: "linux" },
      { machine: "mac", privateKey: key(identities.mac.privateKeyPem) },
    );
    const first = await curl(mac, url, { method: "POST", body, headers: good });
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body)).toMatchObject({ machine: "linux", payload: "over the mesh" });
    expect(codeOf(await curl(mac, url, { method: "POST", body, headers: good }))).toEqual({
      status: 401,
      code: "replayed_nonce",
    });
  });

  it("killing the serving host mid-stream ends the client's stream with a clear error, not a hang", async () => {
    // Near the context size: minutes of tokens at most, far longer than it takes to see the first one.
    const ask = mac.spawn(
      "ask",
      [
        process.execPath,
        join(repoRoot, "bin/potluck.mjs"),
        "ask",
        "--model",
        model,
        "--max-tokens",
        "8000",
        "Tell me a very long story",
      ],
      { cwd: repoRoot, env: { POTLUCK_PORT: String(port) } },
    );
    let exitCode: number | string | undefined;
    void ask.exited.then((code) => (exitCode = code));
    const streaming = await pollUntil(() => ask.output().trim().length > 20 || exitCode !== undefined, {
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    expect(streaming).toBe(true);
    expect(exitCode, ask.output()).toBeUndefined();
    await procs.get("linux")!.stop();
    const ended = await pollUntil(() => exitCode !== undefined, { timeoutMs: 120_000, intervalMs: 200 });
    expect(ended, "potluck ask still running after linux was killed").toBe(true);
    expect(exitCode).toBe(1);
    expect(ask.output()).toMatch(/the reply broke off: linux stopped streaming after \d+ token chunk\(s\)/);
    expect(ask.output()).not.toMatch(/served by/);
  }, 300_000);

  it("a serving host that goes silent mid-stream (powered off) ends the stream with an error, not a hang", async () => {
    await startSidecar(linux, {});
    const ask = mac.spawn(
      "ask-silent",
      [
        process.execPath,
        join(repoRoot, "bin/potluck.mjs"),
        "ask",
        "--model",
        model,
        "--max-tokens",
        "8000",
        "Another very long story",
      ],
      { cwd: repoRoot, env: { POTLUCK_PORT: String(port) } },
    );
    let exitCode: number | string | undefined;
    void ask.exited.then((code) => (exitCode = code));
    expect(
      // Reply text, not the load progress `ask` shows first (models load on first use).
      await pollUntil(() => withoutProgress(ask.output()).trim().length > 20 || exitCode !== undefined, {
        timeoutMs: 120_000,
        intervalMs: 50,
      }),
    ).toBe(true);
    expect(exitCode, ask.output()).toBeUndefined();
    // Links down and processes stopped: no FIN, no RST reaches mac; only its idle deadline can end it.
    await lab.faults.powerOff("linux");
    expect(
      await pollUntil(() => exitCode !== undefined, { timeoutMs: 180_000, intervalMs: 500 }),
      "potluck ask hung after linux went silent",
    ).toBe(true);
    expect(exitCode).toBe(1);
    // Whichever notices first: TCP keepalive on the kept-alive connection (~11 s) or the stream's idle deadline.
    expect(ask.output()).toMatch(
      /the reply broke off: linux stopped streaming after \d+ token chunk\(s\): (the peer stopped answering \(connection timed out|no data for \d+ s)/,
    );
  }, 400_000);
});

/** `potluck ask`'s output without its load-progress line (`\rloading MODEL… 42%`, rewritten in place). */
function withoutProgress(output: string): string {
  return output.replace(/\r?loading [^\r\n]*%\n?/g, "");
}
