import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemorySearchResponse, type Roster } from "@potluck/protocol";
import { generateIdentity } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientAnswer, ClientJob, ClientRequest } from "../../bench/retrieval/peer-client.js";
import { createLab, labRosterEntry, pollUntil, type Lab, type LabHost, type LabProcess } from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";

// Attacks 4 and 2 over the real mesh: "linux" and "mac" belong to home and run real sidecars with real
// memory stores; "eve" belongs to another owner, is on the same roster with its own identity key,
// signs for real, and also listens on its sidecar port to record whatever home sends it.
const cli = join(repoRoot, "bin/potluck.mjs");
const clientScript = join(repoRoot, "tools/bench/retrieval/peer-client.ts");
const port = 8321;
/**
 * eve's sidecar port: records every request; as a serving peer it publishes a 7 B model before the
 * job, streams three tokens and then reports a billion of each kind, naming a settlement of 10^10
 * micro-credits for the hold mac placed (attack 2).
 */
const hostileModel = "big-model";
const hostileScript = `
const reply = ["Hel", "lo", " there"];
require("node:http").createServer((req, res) => {
  let b = "";
  req.on("data", (c) => (b += c));
  req.on("end", () => {
    console.log("REQUEST " + req.url + " " + (req.url === "/peer/probe" ? "" : b));
    if (req.url === "/peer/probe") {
      const { payload, model } = JSON.parse(b);
      const info = model === "${hostileModel}" ? { id: model, state: "ready", testModel: false, contextSize: 4096, parameters: 7e9 } : null;
      res.setHeader("content-type", "application/json");
      return res.end(JSON.stringify({ machine: "eve", bytes: payload.length, payload, ...(model === undefined ? {} : { model: { info, available: ["${hostileModel}"] } }) }));
    }
    if (req.url === "/peer/infer") {
      res.setHeader("content-type", "application/x-ndjson");
      for (const text of reply) res.write(JSON.stringify({ type: "token", text }) + "\\n");
      const settlement = { eventId: JSON.parse(b).jobId + ":settle", amount: 1e10 };
      return res.end(JSON.stringify({ type: "done", servedBy: "eve", testModel: false, finishReason: "stop", usage: { promptTokens: 1e9, completionTokens: 1e9 }, at: new Date().toISOString(), settlement }) + "\\n");
    }
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ hits: [], machines: [] }));
  });
}).listen(${port}, "0.0.0.0", () => console.log("listening"));`;
/** Sidecars start under tsx on a loaded 2-core machine: generous, it only catches a hang. */
const startTimeoutMs = 10 * 60_000;

describe("another owner over the lab mesh (attacks 4 and 2)", { timeout: 10 * 60_000 }, () => {
  let lab: Lab;
  let linux: LabHost;
  let mac: LabHost;
  let eve: LabHost;
  const procs: LabProcess[] = [];
  let recorder: LabProcess;
  let macSidecar: LabProcess;
  const keys = { linux: generateIdentity(), mac: generateIdentity(), eve: generateIdentity() };
  const dataDir = (host: LabHost) => join(host.runDir, "data");

  beforeAll(async () => {
    lab = await createLab({ hosts: ["linux", "mac", "eve"] });
    linux = lab.host("linux");
    mac = lab.host("mac");
    eve = lab.host("eve");
    const roster: Roster = {
      version: 1,
      machines: [
        labRosterEntry(linux, keys.linux.publicKey),
        labRosterEntry(mac, keys.mac.publicKey),
        labRosterEntry(eve, keys.eve.publicKey, "eve"),
      ],
    };
    recorder = eve.spawn("recorder", [process.execPath, "-e", hostileScript]);
    procs.push(recorder);
    [, macSidecar] = await Promise.all([
      startSidecar(linux, keys.linux.privateKeyPem, roster),
      startSidecar(mac, keys.mac.privateKeyPem, roster),
    ]);
    expect(await pollUntil(() => recorder.output().includes("listening"), { timeoutMs: 60_000, intervalMs: 50 })).toBe(
      true,
    );
    await potluck(linux, "add", "the garden hose splitter is in the shed", "--project", "garden");
    await potluck(linux, "add", "tax return password hint: the cat's birthday", "--project", "taxes");
    await potluck(linux, "add", "always file taxes before April", "--project", "taxes", "--pinned");
  }, 20 * 60_000);

  afterAll(async () => {
    for (const proc of procs) await proc.stop().catch(() => undefined);
    await lab?.teardown();
  }, 120_000);

  async function startSidecar(host: LabHost, privateKeyPem: string, roster: Roster): Promise<LabProcess> {
    mkdirSync(dataDir(host), { recursive: true, mode: 0o700 });
    writeFileSync(join(dataDir(host), "identity-ed25519.pem"), privateKeyPem, { mode: 0o600 });
    const rosterFile = join(host.runDir, "roster.json");
    writeFileSync(rosterFile, JSON.stringify(roster));
    const proc = host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
      env: {
        ...process.env,
        POTLUCK_DATA_DIR: dataDir(host),
        POTLUCK_MACHINE: host.name,
        POTLUCK_OWNER: "home",
        POTLUCK_PORT: String(port),
        POTLUCK_BIND: "0.0.0.0",
        POTLUCK_ROSTER_FILE: rosterFile,
        POTLUCK_PEER_MEMORY_ENABLED: "1",
      },
    });
    procs.push(proc);
    const answers = async () =>
      (await host.exec(["curl", "-sf", "-m", "5", `http://127.0.0.1:${port}/memory/status`], { timeoutMs: 60_000 }))
        .code === 0;
    const up = await pollUntil(answers, { timeoutMs: startTimeoutMs, intervalMs: 500 });
    if (!up)
      throw new Error(
        `${host.name} sidecar did not answer within ${startTimeoutMs / 1000} s: ${proc.output().slice(-2000)}`,
      );
    return proc;
  }

  async function potluck(host: LabHost, ...args: string[]): Promise<string> {
    const result = await host.exec([process.execPath, cli, "memory", ...args], {
      env: { ...process.env, POTLUCK_PORT: String(port) },
      timeoutMs: 120_000,
    });
    expect(result.code, `${host.name}: potluck memory ${args.join(" ")}: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  /** Signed requests from eve's namespace to linux's sidecar over potluck0, with eve's own key. */
  async function fromEve(requests: ClientRequest[]): Promise<ClientAnswer[]> {
    const job: ClientJob = {
      mode: "requests",
      url: `http://${linux.meshIp ?? ""}:${port}`,
      machine: "eve",
      target: "linux",
      keyPem: keys.eve.privateKeyPem,
      requests,
    };
    const result = await eve.exec([process.execPath, "--import", "tsx", clientScript], {
      input: JSON.stringify(job),
      timeoutMs: 5 * 60_000,
      cwd: repoRoot,
    });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout.trim().split("\n").pop() ?? "[]") as ClientAnswer[];
  }

  const search = (body: Record<string, unknown>): ClientRequest => ({
    method: "POST",
    path: "/peer/memory/search",
    body: { includeCold: true, ...body },
    signed: true,
  });

  it("refuses eve's search of an unshared project, or of no project, with 403 naming why; the store is unchanged", async () => {
    const before = snapshot(join(dataDir(linux), "memory"));
    const answers = await fromEve([
      search({ query: "tax password", project: "taxes" }),
      search({ query: "tax password" }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([403, 403]);
    for (const answer of answers) expect(answer.body).toMatchObject({ error: { code: "not_shared" } });
    expect(JSON.stringify(answers[0]?.body)).toMatch(/not shared with eve/);
    expect(snapshot(join(dataDir(linux), "memory"))).toEqual(before);
  });

  it("answers eve for a project shared with eve by name, with that project's records alone", async () => {
    await potluck(linux, "share", "garden", "--with", "eve");
    const [shared, taxes] = await fromEve([
      search({ query: "shed garden taxes", project: "garden" }),
      search({ query: "taxes", project: "taxes" }),
    ]);
    expect(shared?.status).toBe(200);
    expect(MemorySearchResponse.parse(shared?.body).hits.map((h) => h.record.project)).toEqual(["garden"]);
    expect(taxes?.status).toBe(403);
    await potluck(linux, "unshare", "garden", "--with", "eve");
  });

  it("fleet search from mac asks linux and never sends the query to eve", async () => {
    const out = JSON.parse(
      await potluck(mac, "search", "tax return password", "--fleet", "--deadline-ms", "5000", "--json"),
    ) as unknown;
    const body = MemorySearchResponse.parse(out);
    expect(body.machines.map((m) => m.machine).sort()).toEqual(["linux", "mac"]);
    expect(body.hits.some((h) => h.machine === "linux" && h.record.project === "taxes")).toBe(true);
    expect(recorder.output()).not.toMatch(/REQUEST \/peer\/memory/);
  });

  it("bills a prompt eve served by what mac observed, not by eve's report of a billion tokens (attack 2)", async () => {
    const res = await mac.exec(
      [
        "curl",
        "-s",
        "-m",
        "60",
        "-H",
        "content-type: application/json",
        "-d",
        JSON.stringify({ model: hostileModel, messages: [{ role: "user", content: "hi" }], max_tokens: 16 }),
        `http://127.0.0.1:${port}/v1/chat/completions`,
      ],
      { timeoutMs: 120_000 },
    );
    expect(JSON.parse(res.stdout)).toMatchObject({ served_by: "eve" });
    // No NATS in this lab: mac's hold and its dispute are logged with their amounts instead of published.
    const logged = await pollUntil(() => /:refund NOT published/.test(macSidecar.output()), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    expect(logged, macSidecar.output().slice(-2000)).toBe(true);
    const out = macSidecar.output();
    expect(out).toMatch(
      /usage dispute: job \S+ served by eve \(eve\) reported 1000000000 prompt \+ 1000000000 completion tokens/,
    );
    // eve was told the hold's id before she served, and the hold is bounded before the job by
    // max_tokens and mac's own prompt bound ("hi": 2 bytes + the template allowance), at the size eve published.
    const hold = /:hold NOT published \(no NATS\): hold of (\d+) tokens of big-model \((\d+) micro-credits\)/.exec(out);
    expect(Number(hold?.[1])).toBe(16 + 2 + 32 + 512);
    expect(recorder.output()).toMatch(/REQUEST \/peer\/infer .*"holdEventId":"job-[^"]+:hold"/);
    // The ledger settles at most the hold; mac takes back everything above the 11 bytes it received.
    const refund = /:refund NOT published \(no NATS\): refund of 0 tokens of big-model \((\d+) micro-credits\)/.exec(
      out,
    );
    const billed = Number(hold?.[2]) - Number(refund?.[1]);
    expect(billed).toBe(price(2 + 32 + 512, "Hello there".length, 7e9));
    expect(billed).toBeLessThan(Number(hold?.[2]));
  });
});

/** A job's price, written out independently of the sidecar's code (see trust-metering.test.ts). */
function price(promptTokens: number, completionTokens: number, parameters: number): number {
  const seconds = (promptTokens * 2 * parameters) / 156e12 + (completionTokens * parameters * 2) / 2.039e12;
  return Math.max(1, Math.ceil((seconds / 60) * 1_000_000));
}

/** Every file under `dir` with its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile()) out[name] = readFileSync(path).toString("base64");
  }
  return out;
}
