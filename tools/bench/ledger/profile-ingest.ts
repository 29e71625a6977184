// Where the ingest path's time goes: one JetStream ingest (or direct append) run of --events usage
// events into a fresh database, with CPU per event of this process, of the database's backends
// and of the NATS server (all from /proc), and optionally a V8 CPU profile of just that phase.
//
//   node --import tsx tools/bench/ledger/profile-ingest.ts [--events 30000] [--mode jetstream|direct] [--profile FILE]
// [--heap-profile FILE] [--rounds R] [--keep 1] [--log-statements 1] [--explain 1]
//
// Not part of `npm test`. Run under the bench lock like every bench.
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { loadavg } from "node:os";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { subjectsFor, type UsageEvent } from "@potluck/protocol";
import postgres from "postgres";
import {
  ensureUsageConsumer,
  fromRequest,
  fromUsage,
  generateSigner,
  Ledger,
  openLedgerDb,
  publishUsage,
  startIngest,
} from "@potluck/ledger";
import { benchFlags } from "../common/args.js";

const adminUrl = process.env.POTLUCK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";
const ORIGIN = "bench.potluck/ledger";
/** Bound so a typo cannot ask for a billion rows. */
const eventsMax = 1_000_000;

const { flags } = benchFlags(process.argv.slice(2), {
  strings: ["batch", "events", "explain", "heap-profile", "keep", "log-statements", "mode", "profile", "rounds"],
  positionals: false,
});
const events = Math.min(Number(flags.get("events") ?? 30_000), eventsMax);
const mode = String(flags.get("mode") ?? "jetstream");
const profileFile = flags.get("profile");
const heapFile = flags.get("heap-profile");
const keep = flags.get("keep") === "1";
const batchMax = Number(flags.get("batch") ?? 1000);

/** Clock ticks (100 Hz) of user + system time of a process, from /proc. */
function ticksOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

function natsServerPids(): number[] {
  const pids: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (
        readFileSync(`/proc/${d}/comm`, "utf8").trim() === "nats-server" &&
        readFileSync(`/proc/${d}/cmdline`, "utf8").includes("4222")
      )
        pids.push(Number(d));
    } catch {
      // raced with an exiting process
    }
  }
  return pids;
}

/**
 * --rounds R: the phase runs R times on fresh databases (and streams), the last one measured and profiled, so the code
 * is warm.
 */
const rounds = Math.max(1, Math.min(Number(flags.get("rounds") ?? 1), 10));

async function main(): Promise<void> {
  for (let r = 1; r <= rounds; r += 1) await once(r === rounds);
}

async function once(measure: boolean): Promise<void> {
  const name = `ledger_prof_${randomBytes(5).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${name}`);
  // Every statement of this database with its duration, in the server's log (--log-statements 1).
  if (flags.get("log-statements") === "1")
    await admin.unsafe(`alter database ${name} set log_min_duration_statement = 0`);
  // The plans (with actual times) of every statement over 2 ms, triggers' statements included (--explain 1).
  if (flags.get("explain") === "1") {
    for (const setting of [
      "session_preload_libraries = 'auto_explain'",
      "auto_explain.log_min_duration = 2",
      "auto_explain.log_analyze = on",
      "auto_explain.log_nested_statements = on",
    ])
      await admin.unsafe(`alter database ${name} set ${setting}`);
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = await openLedgerDb({ databaseUrl: url.href, dataDir: "/nonexistent" });
  const nc = await connect({ servers: natsUrl });
  const prefix = `p${randomBytes(5).toString("hex")}`;
  const at = new Date().toISOString();
  const usage: UsageEvent[] = Array.from({ length: events }, (_, i) => ({
    eventId: `p-${i}`,
    jobId: `job-${i}`,
    kind: "spend" as const,
    account: `acct${i % 1000}`,
    counterparty: "peer",
    servedBy: "box",
    model: "tiny",
    tokens: 10,
    amount: 1 + (i % 1000),
    at,
  }));
  const ledger = new Ledger(db.db, generateSigner(ORIGIN), ORIGIN);
  // Usage is paid from granted credits (a bare earn is refused): every payer starts with a grant, not profiled.
  await ledger.append(
    Array.from({ length: 1000 }, (_, k) =>
      fromRequest({
        kind: "adjust",
        eventId: `grant-${k}`,
        account: `acct${k}`,
        delta: 1_000_000_000,
        reason: "bench",
      }),
    ),
  );
  let stream = "";
  let stopIngest = async (): Promise<void> => undefined;
  try {
    if (mode === "jetstream") {
      ({ stream } = await ensureUsageConsumer(nc, prefix, "ledger"));
      const js = jetstream(nc);
      for (let i = 0; i < usage.length; i += 1000)
        await Promise.all(usage.slice(i, i + 1000).map((ev) => publishUsage(js, prefix, ev)));
    }
    const pgPids = async () =>
      (await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${name}`).map((r) => r.pid);
    const sumTicks = (pids: number[]) => pids.reduce((n, p) => n + ticksOf(p), 0);
    const session = new Session();
    if (profileFile !== undefined && measure) {
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 200 });
      await session.post("Profiler.start");
    }
    if (heapFile !== undefined && measure) {
      if (profileFile === undefined) session.connect();
      await session.post("HeapProfiler.startSampling", {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    }
    const natsPids = natsServerPids();
    const pg0 = sumTicks(await pgPids());
    const nats0 = sumTicks(natsPids);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    if (mode === "jetstream") {
      const ingest = startIngest({
        nc,
        ledger,
        stream,
        durable: "ledger",
        batchMax,
        log: () => undefined,
        onStall: (ms) => {
          throw new Error(`append stalled ${ms} ms`);
        },
      });
      // Timed to the last commit, as in the bench: stopping waits out the idle pull request.
      const deadline = Date.now() + 600_000;
      while (ledger.stats.applied < usage.length) {
        if (Date.now() > deadline)
          throw new Error(`only ${ledger.stats.applied} of ${usage.length} events applied after 10 minutes`);
        await new Promise((r) => setTimeout(r, 2));
      }
      stopIngest = ingest.stop;
    } else {
      await ledger.append(usage.map(fromUsage));
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const pg = sumTicks(await pgPids()) - pg0;
    const nats = sumTicks(natsPids) - nats0;
    if (profileFile !== undefined && measure) {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(String(profileFile), JSON.stringify(profile));
    }
    if (heapFile !== undefined && measure) {
      const { profile } = await session.post("HeapProfiler.stopSampling");
      writeFileSync(String(heapFile), JSON.stringify(profile));
    }
    if ((profileFile !== undefined || heapFile !== undefined) && measure) session.disconnect();
    const per = (x: number) => ((x * 1000) / events).toFixed(1);
    if (measure)
      process.stdout.write(
        `${mode}: ${events} events in ${ms.toFixed(0)} ms = ${((events * 1000) / ms).toFixed(0)}/s; CPU µs/event node ${per((cpu.user + cpu.system) / 1000)} pg ${per(pg * 10)} nats ${per(nats * 10)}; load ${loadavg()[0]?.toFixed(2)}\n`,
      );
    if (keep) process.stdout.write(`kept database ${name}\n`);
  } finally {
    await stopIngest();
    if (stream !== "")
      await jetstreamManager(nc)
        .then((m) => m.streams.delete(subjectsFor(prefix).usageStream.name))
        .catch(() => undefined);
    await nc.close();
    await db.close();
    if (!keep) await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`profile-ingest: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
