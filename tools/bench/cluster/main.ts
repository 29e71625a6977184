// Bench: the usage pipeline on a three-server NATS cluster in the lab (tools/src/lab/cluster.ts).
//   1. Sustained appends/s with the usage stream at replicas 3 ÷ replicas 1, same run, alternated:
//      a ledger service (in this process, on this machine's PostgreSQL, a fresh database each)
//      ingests while --events spends are published as fast as the stream acknowledges them; the
//      rate is events ÷ (first publish → consumer fully acknowledged). Beside it the publish rate
//      alone (a publish is acknowledged once a quorum of the stream's copies has it).
//   2. Failover: with the R3 stream under a steady load, the stream leader's nats-server is
//      killed (SIGKILL); the time from the kill to the first event published after it being in
//      the chain, through the surviving servers. The server is brought back between trials.
//   Events are unsigned (no coordinator in this bench): signature checks are the ledger bench's.
//
//   node --import tsx tools/bench/cluster/main.ts [--events 5000] [--repeats 2] [--failovers 3]
//
// Needs root (lab namespaces). Prints a table and writes tools/bench/results/cluster.json.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { fromRequest, loadLedgerConfig, publishUsage, startLedgerService, type LedgerService } from "@potluck/ledger";
import { natsClusterConnectOptions, subjectsFor, type UsageEvent } from "@potluck/protocol";
import { ensureUsageStream } from "@potluck/service";
import postgres from "postgres";
import { createLab, pollUntil, startNatsCluster, type ClusterProcess } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import { benchFlags } from "../common/args.js";

const { flags } = benchFlags(process.argv.slice(2), { strings: ["events", "repeats", "failovers"] });
const eventsN = Number(flags.get("events") ?? 5_000);
const repeats = Number(flags.get("repeats") ?? 2);
const failovers = Number(flags.get("failovers") ?? 3);
/** Publishes awaiting their acknowledgement at once: enough to keep three servers busy, bounded. */
const publishWindow = 500;
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const hosts = ["n1", "n2", "n3"];

const lab = await createLab({ hosts: [], mesh: false, extraHosts: hosts, rootLink: true });
const admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
const dataDir = mkdtempSync(join(tmpdir(), "potluck-bench-cluster-"));
const dbs: string[] = [];
let nc: NatsConnection | undefined;
try {
  const { natsUrl, nats } = await startNatsCluster(lab, hosts);
  nc = await connect({ ...natsClusterConnectOptions(natsUrl), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const js = jetstream(nc);
  const rates: Record<1 | 3, { appendsPerS: number[]; publishesPerS: number[] }> = {
    1: { appendsPerS: [], publishesPerS: [] },
    3: { appendsPerS: [], publishesPerS: [] },
  };
  for (let r = 0; r < repeats; r++)
    for (const replicas of [3, 1] as const) {
      const run = await appendRun(nc, js, natsUrl, replicas);
      rates[replicas].appendsPerS.push(run.appendsPerS);
      rates[replicas].publishesPerS.push(run.publishesPerS);
      console.log(`R${replicas}: ${run.appendsPerS.toFixed(0)} appends/s, ${run.publishesPerS.toFixed(0)} publishes/s`);
    }
  const failoverMs = await failoverRuns(nc, js, natsUrl, nats);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const result = {
    events: eventsN,
    repeats,
    appendsPerS: { r1: median(rates[1].appendsPerS), r3: median(rates[3].appendsPerS) },
    appendsR3OverR1: median(rates[3].appendsPerS) / median(rates[1].appendsPerS),
    publishesPerS: { r1: median(rates[1].publishesPerS), r3: median(rates[3].publishesPerS) },
    publishesR3OverR1: median(rates[3].publishesPerS) / median(rates[1].publishesPerS),
    failoverMs,
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(" "),
    raw: rates,
  };
  console.table({
    "appends/s R1": result.appendsPerS.r1.toFixed(0),
    "appends/s R3": result.appendsPerS.r3.toFixed(0),
    "appends R3 ÷ R1": result.appendsR3OverR1.toFixed(2),
    "publishes R3 ÷ R1": result.publishesR3OverR1.toFixed(2),
    "leader death → first event applied (ms)": failoverMs.join(", "),
    loadavg: result.loadavg,
  });
  mkdirSync(join(repoRoot, "tools/bench/results"), { recursive: true });
  writeFileSync(join(repoRoot, "tools/bench/results/cluster.json"), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await nc?.close().catch(() => undefined);
  for (const db of dbs) await admin.unsafe(`drop database if exists ${db} with (force)`).catch(() => undefined);
  await admin.end({ timeout: 5 });
  rmSync(dataDir, { recursive: true, force: true });
  await lab.teardown();
}

/** A ledger service in this process on a fresh database and subject root, its stream at `replicas`. */
async function startLedger(natsUrl: string, replicas: number): Promise<{ service: LedgerService; prefix: string }> {
  const prefix = `bc${randomBytes(4).toString("hex")}`;
  const db = `bench_cluster_${prefix}`;
  await admin.unsafe(`create database ${db}`);
  dbs.push(db);
  // The ledger creates the stream (ensureUsageConsumer) from the one setting every process reads.
  process.env.POTLUCK_USAGE_REPLICAS = String(replicas);
  const service = await startLedgerService(
    loadLedgerConfig(
      {
        DATABASE_URL: adminUrl.replace(/\/[^/]*$/, `/${db}`),
        POTLUCK_DATA_DIR: join(dataDir, prefix),
        POTLUCK_NATS_URL: natsUrl,
        POTLUCK_NATS_PREFIX: prefix,
        POTLUCK_LEDGER_BATCH_MAX: "1000",
        POTLUCK_LEDGER_ANCHOR_FILE: "off",
      },
      [],
    ),
  );
  await ensureUsageStream(service.nats as NatsConnection, prefix, { replicas });
  await service.ledger.append([
    fromRequest({ kind: "adjust", eventId: "grant", account: "home", delta: 10_000_000_000, reason: "bench" }),
  ]);
  return { service, prefix };
}

function spend(prefix: string, i: number): UsageEvent {
  return {
    eventId: `${prefix}-${i}`,
    jobId: `job-${i}`,
    kind: "spend",
    account: "home",
    counterparty: "guest",
    servedBy: "guest-box",
    model: "tiny",
    tokens: 1,
    amount: 1,
    at: new Date().toISOString(),
  };
}

async function appendRun(
  nc: NatsConnection,
  js: JetStreamClient,
  natsUrl: string,
  replicas: 1 | 3,
): Promise<{ appendsPerS: number; publishesPerS: number }> {
  const { service, prefix } = await startLedger(natsUrl, replicas);
  try {
    const stream = subjectsFor(prefix).usageStream.name;
    const t0 = performance.now();
    for (let i = 0; i < eventsN; i += publishWindow)
      await Promise.all(
        Array.from({ length: Math.min(publishWindow, eventsN - i) }, (_, k) =>
          publishUsage(js, prefix, spend(prefix, i + k)),
        ),
      );
    const published = performance.now();
    const jsm = await jetstreamManager(nc);
    const drained = await pollUntil(
      async () => {
        const info = await jsm.consumers.info(stream, "ledger");
        return info.num_pending === 0 && info.num_ack_pending === 0 && info.ack_floor.stream_seq >= eventsN;
      },
      { timeoutMs: 600_000, intervalMs: 50 },
    );
    if (!drained) throw new Error(`R${replicas}: the ledger did not apply ${eventsN} events within 10 minutes`);
    const done = performance.now();
    return { appendsPerS: eventsN / ((done - t0) / 1000), publishesPerS: eventsN / ((published - t0) / 1000) };
  } finally {
    await service.close();
  }
}

/** Kills the R3 stream leader under a steady load, `failovers` times; ms from the kill to the first event applied. */
async function failoverRuns(
  nc: NatsConnection,
  js: JetStreamClient,
  natsUrl: string,
  nats: ClusterProcess[],
): Promise<number[]> {
  const { service, prefix } = await startLedger(natsUrl, 3);
  const jsm = await jetstreamManager(nc);
  const stream = subjectsFor(prefix).usageStream.name;
  let i = 0;
  let running = true;
  const acked: { id: string; atMs: number }[] = [];
  const load = (async () => {
    while (running) {
      const ev = spend(prefix, i++);
      await publishUsage(js, prefix, ev).then(
        () => acked.push({ id: ev.eventId, atMs: Date.now() }),
        () => undefined, // unacknowledged during the failover: a new event follows
      );
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const out: number[] = [];
  const sql = postgres(service.database.kind === "postgres" ? dbUrlOf(prefix) : "", { max: 1 });
  try {
    for (let f = 0; f < failovers; f++) {
      await new Promise((r) => setTimeout(r, 3_000));
      const leader = (await jsm.streams.info(stream)).cluster?.leader;
      const node = nats.find((n) => n.name === `nats-${leader}`);
      if (node === undefined) throw new Error(`no stream leader to kill (${leader})`);
      const killedAt = Date.now();
      await node.kill();
      const applied = await pollUntil(
        async () => {
          const after = acked
            .filter((a) => a.atMs > killedAt)
            .slice(0, 100)
            .map((a) => a.id);
          if (after.length === 0) return false;
          const rows = await sql`select 1 from entries where event_id = any(${after}) limit 1`;
          return rows.length > 0;
        },
        { timeoutMs: 120_000, intervalMs: 20 },
      );
      out.push(applied ? Date.now() - killedAt : NaN);
      console.log(`failover ${f + 1}: killed ${node.name}, first event applied after ${out.at(-1)} ms`);
      await node.start();
    }
  } finally {
    running = false;
    await load;
    await sql.end({ timeout: 5 });
    await service.close();
  }
  return out;
}

function dbUrlOf(prefix: string): string {
  return adminUrl.replace(/\/[^/]*$/, `/bench_cluster_${prefix}`);
}
