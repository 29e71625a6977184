// Bench: the coordinator with 1,000 machines.
//   1. Roster read: GET /v1/roster p50/p95 over loopback HTTP with 10 and 1,000 enrolled machines,
//      against GET /health as the HTTP baseline (same process, same run), on Postgres and PGlite.
//   2. Heartbeat fan-in: 1,000 machines at 1 Hz over NATS for --seconds, each beat signed with
//      its machine's identity key (the coordinator verifies every one); the coordinator's CPU
//      share (CPU seconds / wall seconds, one core = 100 %) against the same process idle for the
//      same window, and whether every machine ends up online.
//
//   node --import tsx tools/bench/coordinator/main.ts [--machines 1000] [--seconds 20] [--samples 300] [--repeats 3]
//
// Prints a table and writes tools/bench/results/coordinator.json. Not part of `npm test`.
import { benchFlags } from "../common/args.js";
import { randomBytes, type KeyObject } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, headers } from "@nats-io/transport-node";
import { Roster, subjectsFor } from "@potluck/protocol";
import { generateIdentity, messageSigningParts, privateKeyFromPem, signRequest } from "@potluck/peer";
import postgres from "postgres";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";
import { waitFor } from "../../src/lib/supervisor.js";
import { httpOk } from "../../src/lib/net.js";
import { fmt, medianOf, timeCalls, type Summary } from "../common/stats.js";
import { cpuSeconds, startChild, type Child } from "./process.js";

const resultsFile = join(repoRoot, "tools/bench/results/coordinator.json");
const postgresBase = process.env.POTLUCK_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432";
const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";
const adminSecret = randomBytes(24).toString("base64url");
/** Bounds so a typo cannot ask for a million machines or an hour of heartbeats. */
const machinesMax = 10_000;
const secondsMax = 600;
/** Enrollments in flight at once while filling the roster. */
const enrollConcurrency = 16;

interface Args {
  machines: number;
  seconds: number;
  samples: number;
  repeats: number;
}

function parseArgs(argv: string[]): Args {
  const { flags } = benchFlags(argv, { strings: ["machines", "seconds", "samples", "repeats"], positionals: false });
  const number = (name: keyof Args, fallback: number) => Number(flags.get(name) ?? fallback);
  const args: Args = {
    machines: number("machines", 1000),
    seconds: number("seconds", 20),
    samples: number("samples", 300),
    repeats: number("repeats", 3),
  };
  if (!(args.machines >= 10 && args.machines <= machinesMax)) throw new Error(`--machines: 10..${machinesMax}`);
  if (!(args.seconds >= 5 && args.seconds <= secondsMax)) throw new Error(`--seconds: 5..${secondsMax}`);
  if (!(args.samples >= 10 && args.samples <= 10_000) || !(args.repeats >= 1 && args.repeats <= 20))
    throw new Error("--samples 10..10000, --repeats 1..20");
  return args;
}

interface Coordinator {
  url: string;
  child: Child;
  prefix: string;
  dispose(): Promise<void>;
}

async function startCoordinator(backend: "postgres" | "pglite"): Promise<Coordinator> {
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-bench-coord-"));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const prefix = `b${randomBytes(4).toString("hex")}`;
  let dbName: string | null = null;
  if (backend === "postgres") {
    dbName = `coord_b_${randomBytes(5).toString("hex")}`;
    const sql = postgres(`${postgresBase}/postgres`, { max: 1 });
    await sql.unsafe(`create database ${dbName}`);
    await sql.end();
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    POTLUCK_DATA_DIR: dataDir,
    POTLUCK_COORDINATOR_PORT: String(port),
    POTLUCK_BIND: "127.0.0.1",
    POTLUCK_NATS_URL: natsUrl,
    POTLUCK_NATS_PREFIX: prefix,
    POTLUCK_COORDINATOR_ADMIN_SECRET: adminSecret,
  };
  if (dbName === null) delete env.DATABASE_URL;
  else env.DATABASE_URL = `${postgresBase}/${dbName}`;
  const child = startChild(process.execPath, ["--import", "tsx", serviceEntry.coordinator], env);
  const url = `http://127.0.0.1:${port}`;
  if (!(await waitFor(() => httpOk(`${url}/health`), { timeoutMs: 120_000 })))
    throw new Error(`coordinator did not start: ${child.output()}`);
  return {
    url,
    child,
    prefix,
    async dispose() {
      await child.stop();
      rmSync(dataDir, { recursive: true, force: true });
      if (dbName !== null) {
        const sql = postgres(`${postgresBase}/postgres`, { max: 1, onnotice: () => undefined });
        await sql.unsafe(`drop database if exists ${dbName} with (force)`);
        await sql.end();
      }
    },
  };
}

const key = () => randomBytes(32).toString("base64");

/** An enrolled bench machine; its identity key signs its heartbeats, as a real machine's does. */
interface BenchMachine {
  name: string;
  key: string;
  privateKey: KeyObject;
}

/** Enrolls machines up to `total` with one reusable token; returns name and key of each new one. */
async function fill(c: Coordinator, from: number, total: number): Promise<BenchMachine[]> {
  const tokenRes = await fetch(`${c.url}/v1/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminSecret}` },
    body: JSON.stringify({ reusable: true }),
  });
  const { token } = (await tokenRes.json()) as { token: string };
  const made: BenchMachine[] = [];
  let next = from;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const identity = generateIdentity();
      const machine = { name: `m${i}`, key: key(), privateKey: privateKeyFromPem(identity.privateKeyPem) };
      const res = await fetch(`${c.url}/v1/enroll`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          token,
          name: machine.name,
          owner: "bench",
          wireguardPublicKey: machine.key,
          identityPublicKey: identity.publicKey,
          endpoints: [`198.18.${(i >> 8) & 255}.${i & 255}:51820`],
        }),
      });
      if (res.status !== 201) throw new Error(`enrolling ${machine.name}: ${res.status} ${await res.text()}`);
      made.push(machine);
    }
  };
  await Promise.all(Array.from({ length: enrollConcurrency }, worker));
  return made;
}

async function readLatency(url: string, args: Args): Promise<Summary> {
  const runs: Summary[] = [];
  for (let r = 0; r < args.repeats; r++)
    runs.push(
      await timeCalls(
        async () => {
          const res = await fetch(url);
          if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
          await res.arrayBuffer();
        },
        { samples: args.samples, warmup: 20 },
      ),
    );
  return medianOf(runs);
}

export async function rosterBench(backend: "postgres" | "pglite", args: Args) {
  const c = await startCoordinator(backend);
  try {
    await fill(c, 0, 10);
    const health = await readLatency(`${c.url}/health`, args);
    const roster10 = await readLatency(`${c.url}/v1/roster`, args);
    const fillStarted = performance.now();
    const machines = await fill(c, 10, args.machines);
    const enrollS = (performance.now() - fillStarted) / 1000;
    const rosterN = await readLatency(`${c.url}/v1/roster`, args);
    const versionN = await readLatency(`${c.url}/v1/roster/version`, args);
    const bytes = (await (await fetch(`${c.url}/v1/roster`)).arrayBuffer()).byteLength;
    return { backend, health, roster10, rosterN, versionN, rosterBytes: bytes, enrollPerS: machines.length / enrollS };
  } finally {
    await c.dispose();
  }
}

export async function heartbeatBench(args: Args) {
  const c = await startCoordinator("postgres");
  const nc = await connect({ servers: natsUrl });
  try {
    const machines = await fill(c, 0, args.machines);
    const pid = c.child.proc.pid ?? -1;
    const window = async (send: boolean) => {
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      let sent = 0;
      const subjects = subjectsFor(c.prefix);
      const slices = 10; // spread each second's heartbeats over ten 100 ms slices, as real clocks would be
      for (let s = 0; s < args.seconds * slices; s++) {
        const due = t0 + ((s + 1) * 1000) / slices;
        if (send) {
          for (let i = s % slices; i < machines.length; i += slices) {
            const m = machines[i] as BenchMachine;
            const subject = subjects.heartbeat(m.name);
            const payload = JSON.stringify({
              machine: m.name,
              wireguardPublicKey: m.key,
              seq: s,
              sentAt: new Date().toISOString(),
              status: "ok",
            });
            const signed = headers();
            for (const [name, value] of Object.entries(
              signRequest(messageSigningParts(subject, payload), { machine: m.name, privateKey: m.privateKey }),
            ))
              signed.set(name, value);
            nc.publish(subject, payload, { headers: signed });
            sent++;
          }
          await nc.flush();
        }
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const wallS = (performance.now() - t0) / 1000;
      return { cpuShare: (cpuSeconds(pid) - cpu0) / wallS, wallS, sent };
    };
    const idle = await window(false);
    const busy = await window(true);
    const roster = Roster.parse(await (await fetch(`${c.url}/v1/roster`)).json());
    const online = roster.machines.filter((m) => m.state === "online").length;
    return {
      machines: machines.length,
      seconds: args.seconds,
      idle,
      busy,
      heartbeatsPerS: busy.sent / busy.wallS,
      online,
    };
  } finally {
    await nc.drain();
    await c.dispose();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = new Date().toISOString();
  const rosters = [await rosterBench("postgres", args), await rosterBench("pglite", args)];
  const heartbeats = await heartbeatBench(args);
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  process.stdout.write(
    `\ncoordinator bench (${args.machines} machines; p50/p95 ms, median of ${args.repeats} repeats × ${args.samples} samples)\n\n`,
  );
  process.stdout.write(
    "backend   health p50  roster@10 p50  roster@N p50  roster@N p95  roster@N / health  version@N p50  roster bytes  enroll/s\n",
  );
  for (const r of rosters) {
    process.stdout.write(
      `${r.backend.padEnd(9)} ${fmt(r.health.p50).padStart(10)}  ${fmt(r.roster10.p50).padStart(13)}  ${fmt(r.rosterN.p50).padStart(12)}  ${fmt(r.rosterN.p95).padStart(12)}  ${(r.rosterN.p50 / r.health.p50).toFixed(1).padStart(17)}  ${fmt(r.versionN.p50).padStart(13)}  ${String(r.rosterBytes).padStart(12)}  ${r.enrollPerS.toFixed(0).padStart(8)}\n`,
    );
  }
  const h = heartbeats;
  process.stdout.write(
    `\nheartbeat fan-in: ${h.machines} machines at 1 Hz for ${h.seconds} s (${h.heartbeatsPerS.toFixed(0)} msg/s) on Postgres\n`,
  );
  process.stdout.write(
    `  coordinator CPU idle ${pct(h.idle.cpuShare)} of one core, under fan-in ${pct(h.busy.cpuShare)} (+${pct(h.busy.cpuShare - h.idle.cpuShare)}); online after: ${h.online}/${h.machines}\n`,
  );
  mkdirSync(join(repoRoot, "tools/bench/results"), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify({ started, args, rosters, heartbeats }, null, 2)}\n`);
  process.stdout.write(`\nwrote ${resultsFile}\n`);
}

await main();
