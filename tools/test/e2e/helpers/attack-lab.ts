import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Roster } from "@potluck/protocol";
import {
  createLab,
  hubStartMs,
  pollUntil,
  startHub,
  startHubSidecar,
  waitForOutput,
  type Hub,
  type Lab,
  type LabHost,
  type LabProcess,
} from "../../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../../src/lib/repo.js";
import type { JobAnswer, SignedJob } from "./signed-client.js";

/**
 * The household issue 18's attacker lives in: a hub (nats-server and the coordinator), two
 * machines of owner `home` that joined it with the hub's token (home1 serves the tiny TEST model
 * and keeps a memory store, home2 has no model), and `eve`, a machine of owner `eve` that joined
 * with a token the hub's admin made for her. Everyone has a WireGuard potluck0 made by `potluck
 * join`. The ledger runs on real PostgreSQL in the test's own namespace, reached over the lab's
 * root link on the home LAN, and ingests the household's JetStream.
 *
 * eve's own machine is hers: instead of a sidecar she runs `hostileSidecar` on the sidecar port,
 * which serves a "7 B" model, reports a billion tokens per job and records every request it gets
 * (headers included) so she can replay them.
 */
export const sidecarPort = 8321;
export const hostileModel = "big-model";
export const tinyModel = "potluck-tiny-test-model-s1-v2";

export interface AttackLab {
  lab: Lab;
  hub: Hub;
  home1: LabHost;
  home2: LabHost;
  eve: LabHost;
  sidecars: { home1: LabProcess; home2: LabProcess };
  recorder: LabProcess;
  ledger: RootProcess;
  /** The ledger as lab hosts reach it (the root link's address). */
  ledgerUrl: string;
  /** The operator's write token (grants, snapshots). */
  ledgerToken: string;
  /** The ledger's PostgreSQL database, for psql. */
  databaseUrl: string;
  database: string;
  /** A login role the suite may create with SELECT only; teardown drops it. */
  readOnlyRole: string;
  /** The coordinator's signing key (base64), as a join pins it. */
  hubKey: string;
  /** The ledger's data dir (its signer key), for `potluck ledger verify`. */
  ledgerDir: string;
  meshIp(name: string): string;
  /** The machine's identity key as `potluck join` made it. */
  keyPem(host: LabHost): string;
  /** signed-client.ts run inside `host`. */
  signedCalls(host: LabHost, job: Omit<SignedJob, "keyPem">, keyOf?: LabHost): Promise<JobAnswer>;
  /** What eve's stand-in sidecar does with the next jobs' usage (attack 2). */
  hostileMode(mode: HostileMode): void;
  /** eve's signed hold on JetStream for a job she asks of another machine (usage/hold.ts's HeldJob). */
  eveHolds(job: EveHeldJob): Promise<{ eventId: string; amount: number; seq?: number }>;
  /** One psql query's unaligned output. */
  sql(query: string): string;
  teardown(): Promise<void>;
}

export interface EveHeldJob {
  jobId: string;
  model: string;
  maxTokens: number;
  messages: { role: "user" | "system" | "assistant"; content: string }[];
  servedBy: { machine: string; owner: string };
  /** The model's size as the server published it; undefined prices it as a typical 8 B one. */
  parameters?: number;
}

export interface RootProcess {
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

const clientScript = join(repoRoot, "tools/test/e2e/helpers/signed-client.ts");
const pgAdmin = ["-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-At"];

function psql(database: string, query: string): string {
  const res = spawnSync("psql", [...pgAdmin, "-d", database, "-c", query], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`psql: ${res.stderr}`);
  return res.stdout.trim();
}

/** psql that may fail: the attack on the database expects to be refused. */
export function psqlAttempt(database: string, query: string): { ok: boolean; stderr: string } {
  const res = spawnSync("psql", [...pgAdmin, "-d", database, "-c", query], { encoding: "utf8" });
  return { ok: res.status === 0, stderr: res.stderr };
}

const usageModules = {
  hold: join(repoRoot, "apps/sidecar/src/usage/hold.ts"),
  publisher: join(repoRoot, "apps/sidecar/src/usage/publisher.ts"),
};

/**
 * What eve's stand-in does with the usage of a job it serves for a household machine (attack 2):
 * - unsettled: reports a billion tokens and names no settlement;
 * - inflated: also publishes (signed by eve, with the household's NATS secret) a settlement of
 *   1,000 × the hold and names it in its done chunk;
 * - full-hold: publishes and names a settlement of exactly the hold, the most the ledger allows;
 * - renamed: publishes the whole hold's settlement under another job's event id, and names one of
 *   1 micro-credit under this job's, so the requester finds nothing to dispute.
 */
export type HostileMode = "unsettled" | "inflated" | "full-hold" | "renamed";

/**
 * eve's usage publisher, the sidecar's own code (usage/publisher.ts) signing with her identity
 * key: what a sidecar of hers would publish, and what she may publish by hand. Module text, for
 * the scripts below that run in eve's namespace under tsx.
 */
const eveUsage = `
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { privateKeyFromPem, signRequest } from "@potluck/peer";
import { natsConnectOptions, subjectsFor } from "@potluck/protocol";
import { holdAmountFor, placeHold } from ${JSON.stringify(usageModules.hold)};
import { jetStreamUsagePublisher, usageEventId } from ${JSON.stringify(usageModules.publisher)};
const privateKey = privateKeyFromPem(process.env.EVE_KEY);
let nats;
const usage = async () => {
  nats ??= await connect(natsConnectOptions(process.env.NATS_URL));
  return jetStreamUsagePublisher({
    js: jetstream(nats),
    // The household's stream exists: the ledger made it.
    ensureStream: async () => undefined,
    subjects: subjectsFor(process.env.PREFIX),
    log: (m) => console.log("USAGE " + m),
    sign: (parts) => signRequest(parts, { machine: "eve", privateKey }),
  });
};`;

const hostileSidecar = `${eveUsage}
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
const reply = ["Hel", "lo", " there"];
const parameters = 7e9;
const mode = () => (existsSync(process.env.MODE_FILE) ? readFileSync(process.env.MODE_FILE, "utf8").trim() : "unsettled");
/** The settlement eve names in her done chunk, after publishing it when her mode says so. */
async function settle(job) {
  const m = mode();
  if (m === "unsettled" || job.holdEventId === undefined) return undefined;
  const hold = holdAmountFor({ messages: job.messages, maxTokens: job.maxTokens, parameters });
  const amount = m === "inflated" ? hold * 1000 : hold;
  const jobId = m === "renamed" ? job.jobId + "-renamed" : job.jobId;
  const published = await (await usage()).publishJob({
    jobId, side: "settle", account: job.requester.owner, counterparty: "eve", servedBy: "eve",
    model: job.model, promptTokens: 1e9, completionTokens: 1e9, parameters, amount, ref: job.holdEventId,
  });
  console.log("SETTLED " + JSON.stringify({ mode: m, jobId: job.jobId, hold, amount, published }));
  const named = m === "renamed" ? 1 : amount;
  // publishJob answers { seq } once JetStream acknowledged it, false (or nothing) otherwise.
  return published ? { eventId: usageEventId(job.jobId, "settle"), amount: named } : undefined;
}
createServer((req, res) => {
  let b = "";
  req.on("data", (c) => (b += c));
  req.on("end", async () => {
    console.log("REQUEST " + JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: b }));
    if (req.url === "/peer/probe") {
      const { payload, model } = JSON.parse(b);
      const info = model === "${hostileModel}" ? { id: model, state: "ready", testModel: false, contextSize: 4096, parameters } : null;
      res.setHeader("content-type", "application/json");
      return res.end(JSON.stringify({ machine: "eve", bytes: payload.length, payload, ...(model === undefined ? {} : { model: { info, available: ["${hostileModel}"] } }) }));
    }
    if (req.url === "/peer/infer") {
      res.setHeader("content-type", "application/x-ndjson");
      for (const text of reply) res.write(JSON.stringify({ type: "token", text }) + "\\n");
      const settlement = await settle(JSON.parse(b)).catch((e) => void console.log("SETTLE FAILED " + e.message));
      return res.end(JSON.stringify({ type: "done", servedBy: "eve", testModel: false, finishReason: "stop", usage: { promptTokens: 1e9, completionTokens: 1e9 }, ...(settlement === undefined ? {} : { settlement }), at: new Date().toISOString() }) + "\\n");
    }
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ hits: [], machines: [] }));
  });
}).listen(${sidecarPort}, "0.0.0.0", () => console.log("listening"));`;

/**
 * eve places a hold on her own account for a job she will ask of `servedBy`, as her sidecar
 * would (usage/hold.ts's placeHold, signed with her key); prints the placed hold.
 */
const eveHolds = `${eveUsage}
const hold = await placeHold(await usage(), JSON.parse(process.env.JOB));
console.log("HOLD " + JSON.stringify(hold ?? null));
await nats.drain();`;

/** The requests eve's machine received, oldest first. */
export function recorded(
  recorder: LabProcess,
): { method: string; url: string; headers: Record<string, string>; body: string }[] {
  return recorder
    .output()
    .split("\n")
    .filter((l) => l.startsWith("REQUEST "))
    .map((l) => JSON.parse(l.slice("REQUEST ".length)) as never);
}

export async function createAttackLab(): Promise<AttackLab> {
  const lab = await createLab({ hosts: ["home1", "home2", "eve"], mesh: false, extraHosts: ["hub"], rootLink: true });
  const stops: (() => Promise<void>)[] = [];
  const database = `attacks_${randomBytes(5).toString("hex")}`;
  const ledgerDir = mkdtempSync(join(tmpdir(), "attack-ledger-"));
  const readOnlyRole = `reader_${database.slice(-6)}`;
  const teardown = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await lab.teardown();
    spawnSync("psql", [...pgAdmin, "-d", "postgres", "-c", `drop database if exists ${database} with (force)`]);
    // A role is the server's, not the database's: the one attack 13 may have made goes too.
    spawnSync("psql", [...pgAdmin, "-d", "postgres", "-c", `drop role if exists ${readOnlyRole}`]);
    rmSync(ledgerDir, { recursive: true, force: true });
  };
  try {
    const hub = await startHub(lab);
    const home1 = lab.host("home1");
    const home2 = lab.host("home2");
    const eve = lab.host("eve");
    for (const host of [home1, home2]) await hub.join(host);
    await hub.join(eve, "eve", { owner: "eve" });
    const roster = await hub.roster();
    const meshIp = (name: string) => {
      const ip = roster.machines.find((m) => m.name === name)?.meshIp;
      if (ip === undefined) throw new Error(`${name} is not on the roster`);
      return ip;
    };

    psql("postgres", `create database ${database}`);
    const databaseUrl = `postgres://postgres@127.0.0.1:5432/${database}`;
    const ledgerToken = randomBytes(24).toString("hex");
    const hubKey = hub.signingKey();
    const ledgerPort = 20_000 + Math.floor(Math.random() * 20_000);
    const rootIp = lab.rootIp ?? "";
    const ledger = spawnRoot([process.execPath, "--import", "tsx", serviceEntry.ledger], {
      ...hub.env(),
      DATABASE_URL: databaseUrl,
      POTLUCK_DATA_DIR: ledgerDir,
      POTLUCK_BIND: rootIp,
      POTLUCK_LEDGER_PORT: String(ledgerPort),
      POTLUCK_LEDGER_WRITE_TOKEN: ledgerToken,
      POTLUCK_LEDGER_ANCHOR_FILE: "off",
      POTLUCK_NATS_URL: hub.natsUrl,
      POTLUCK_COORDINATOR_URL: hub.coordinatorUrl,
      POTLUCK_COORDINATOR_KEY: hubKey,
    });
    stops.push(() => ledger.stop());
    const ledgerUrl = `http://${rootIp}:${ledgerPort}`;

    const keyPem = (host: LabHost) => readFileSync(join(hub.dataDir(host), "identity-ed25519.pem"), "utf8");
    const modeFile = join(eve.runDir, "hostile-mode");
    const eveEnv = { EVE_KEY: keyPem(eve), NATS_URL: hub.natsUrl, PREFIX: hub.prefix, MODE_FILE: modeFile };
    const tsxEval = (script: string) => [process.execPath, "--import", "tsx", "--input-type=module", "-e", script];
    const recorder = eve.spawn("hostile-sidecar", tsxEval(hostileSidecar), { cwd: repoRoot, env: eveEnv });
    await waitForOutput(recorder, /listening/, "eve's hostile sidecar", 60_000);
    const noModels = join(home2.runDir, "no-models");
    mkdirSync(noModels, { recursive: true });
    const [s1, s2] = await Promise.all([
      // A context room enough for a reply larger than every socket buffer on its way (attack 11).
      startSidecar(hub, home1, { POTLUCK_PEER_MEMORY_ENABLED: "1", POTLUCK_CONTEXT_SIZE: "16384" }),
      startSidecar(hub, home2, { POTLUCK_MODELS: noModels }),
    ]);
    const ready = await pollUntil(
      async () => {
        const res = await home1.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", `${ledgerUrl}/v1/grants`]);
        return res.stdout === "200";
      },
      { timeoutMs: hubStartMs, intervalMs: 500 },
    );
    if (!ready) throw new Error(`the ledger did not answer on ${ledgerUrl}: ${ledger.output().slice(-2000)}`);
    await hub.waitOnline(["home1", "home2", "eve"], 120_000);

    return {
      lab,
      hub,
      home1,
      home2,
      eve,
      sidecars: { home1: s1, home2: s2 },
      recorder,
      ledger,
      ledgerUrl,
      ledgerToken,
      databaseUrl,
      database,
      readOnlyRole,
      ledgerDir,
      hubKey,
      meshIp,
      keyPem,
      async signedCalls(host, job, keyOf = host) {
        const res = await host.exec([process.execPath, "--import", "tsx", clientScript], {
          input: JSON.stringify({ ...job, keyPem: keyPem(keyOf) }),
          timeoutMs: 10 * 60_000,
          cwd: repoRoot,
        });
        if (res.code !== 0) throw new Error(`signed-client in ${host.name}: ${res.stderr}`);
        return JSON.parse(res.stdout.trim().split("\n").pop() ?? "{}") as JobAnswer;
      },
      hostileMode: (mode) => writeFileSync(modeFile, mode),
      async eveHolds(job) {
        const { parameters, ...rest } = job;
        const held = { ...rest, account: "eve", published: parameters === undefined ? undefined : { parameters } };
        const res = await eve.exec(tsxEval(eveHolds), {
          cwd: repoRoot,
          env: { ...eveEnv, JOB: JSON.stringify(held) },
          timeoutMs: 120_000,
        });
        const line = res.stdout.split("\n").find((l) => l.startsWith("HOLD "));
        const hold =
          line === undefined
            ? null
            : (JSON.parse(line.slice("HOLD ".length)) as { eventId: string; amount: number; seq?: number } | null);
        if (hold === null) throw new Error(`eve could not place her hold: ${res.stdout}${res.stderr}`);
        return hold;
      },
      sql: (query) => psql(database, query),
      teardown,
    };
  } catch (error) {
    await teardown();
    throw error;
  }
}

const startSidecar = startHubSidecar;

/** A service in the test's own (root) namespace, in its own process group so stop() reaches its children. */
function spawnRoot(argv: string[], env: NodeJS.ProcessEnv): RootProcess {
  const [command, ...args] = argv;
  const child: ChildProcess = spawn(command as string, args, {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const keep = (d: Buffer) => (output = (output + d.toString("utf8")).slice(-1024 * 1024));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    pid: child.pid ?? -1,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.pid === undefined) return;
      process.kill(-child.pid, "SIGTERM");
      const timer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, "SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Membership and keys, without liveness (which moves with time, not with an attack). */
export function rosterBytes(roster: Roster): string {
  return JSON.stringify({
    version: roster.version,
    machines: roster.machines.map(({ state: _s, lastHeartbeatAt: _l, staleKey: _k, ...rest }) => rest),
  });
}

/** Every file under `dir` with its bytes (base64); none when it does not exist yet. */
export function filesUnder(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile()) out[name] = readFileSync(path).toString("base64");
  }
  return out;
}

/** Resident memory of a process and all its descendants. */
export function treeRssBytes(root: number): number {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const tree = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parents) if (!tree.has(pid) && tree.has(ppid)) grew = tree.add(pid) !== undefined;
  }
  let bytes = 0;
  for (const pid of tree) {
    try {
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
      bytes += Number(rss ?? 0) * 1024;
    } catch {
      // Gone meanwhile.
    }
  }
  return bytes;
}
