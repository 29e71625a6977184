// Bench: the credit ledger on this machine's PostgreSQL and NATS.
//   1. Sustained appends/s from JetStream with the hash chain: N usage events (payments from
//      granted accounts, each an entry pair) pre-published to a fresh stream, consumed by the
//      ledger's ingest loop (durable pull consumer, batches of 1,000, ack after commit), each
//      event signed by a machine of the paying account's owner and its signer checked at ingest
//      (as every sidecar's events are since #18); in the same run: the same events unsigned, the
//      same events appended directly (no NATS), and the limit of this machine's PostgreSQL: the
//      same entries, hashed and chained the same way, inserted by a bare loop in transactions of
//      1,000 events (no NATS, no service code, the chain-check trigger on).
//   2. Balance read p50/p95: Ledger.balance() and GET /v1/balances/:account (HTTP in-process),
//      against GET /health as the HTTP baseline.
//   3. Snapshot of --accounts balances (default 1,000,000): read + Merkle tree + appended entry,
//      with the in-memory tree build alone as the baseline.
//   Beside each append rate: CPU microseconds per event, of this Node process and of the database's
//   backends (read from /proc: PostgreSQL runs on this machine). On a shared, loaded machine
//   the wall-clock rates swing with the neighbours; CPU per event is what a change moves.
//   4. Proof bundle generation (GET-equivalent, includes recomputing balances as of the snapshot)
//      and offline verification.
//
//   node --import tsx tools/bench/ledger/main.ts [--events 50000] [--accounts 1000000] [--repeats 3]
//
// Prints a table and writes tools/bench/results/ledger.json. Not part of `npm test`.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { RosterEntry, subjectsFor, type UsageEvent } from "@potluck/protocol";
import { generateIdentity, privateKeyFromPem, signRequest, staticRoster } from "@potluck/peer";
import postgres from "postgres";
// Benches drive the app in-process (tools may import apps).
import { loadLedgerConfig, startLedgerService, type LedgerService } from "@potluck/ledger";
import {
  balanceLeaves,
  ensureUsageConsumer,
  fromRequest,
  fromUsage,
  generateSigner,
  Ledger,
  openLedgerDb,
  publishUsage,
  rosterDirectory,
  startIngest,
  usageVerifier,
  takeSnapshot,
  type OpenedDb,
} from "@potluck/ledger";
import { entryHash, GENESIS_HASH, merkleRoot, verifyProofBundle, type LedgerRecord } from "@potluck/ledger-proof";
import { benchFlags } from "../common/args.js";
import { repoRoot } from "../../src/lib/repo.js";
import { fmt, median, medianOf, summarize, timeCalls, type Summary } from "../common/stats.js";

const resultsFile = join(repoRoot, "tools/bench/results/ledger.json");
const adminUrl = process.env.POTLUCK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";
/** Bounds so a typo cannot ask for a billion rows. */
const eventsMax = 1_000_000;
const accountsMax = 5_000_000;
const ORIGIN = "bench.potluck/ledger";

const { flags } = benchFlags(process.argv.slice(2), { strings: ["accounts", "events", "repeats"], positionals: false });
const events = Math.min(Number(flags.get("events") ?? 50_000), eventsMax);
const accounts = Math.min(Number(flags.get("accounts") ?? 1_000_000), accountsMax);
const repeats = Math.max(1, Math.min(Number(flags.get("repeats") ?? 3), 10));
const ledgerAccounts = 1_000;
/** Longest a JetStream ingest run may take before the bench gives up on it. */
const ingestTimeoutMs = 600_000;

async function main(): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  const ingest: number[] = [];
  const ingestUnsigned: number[] = [];
  const direct: number[] = [];
  const bare: number[] = [];
  const ingestCpu: CpuPerEvent[] = [];
  const directCpu: CpuPerEvent[] = [];
  const reads: Summary[] = [];
  const httpReads: Summary[] = [];
  const health: Summary[] = [];
  const proofGen: Summary[] = [];
  const proofVerify: Summary[] = [];
  try {
    for (let r = 0; r < repeats; r += 1) {
      const usage = makeEvents(events, r);
      bare.push(await withDb(async (db) => bareChainedInsert(db, usage)));
      const d = await withDb(async (db) => appendDirect(db, usage));
      direct.push(d.rate);
      directCpu.push(d.cpu);
      ingest.push(
        await withDb(async (db) => {
          const { rate, cpu } = await appendFromJetStream(nc, db, usage, true);
          ingestCpu.push(cpu);
          return withLedgerService(db.url ?? "", async ({ ledger, app }) => {
            const pick = () => `acct${Math.floor(Math.random() * ledgerAccounts)}`;
            reads.push(await timeCalls(() => ledger.balance(pick()), { samples: 2_000, warmup: 100 }));
            httpReads.push(
              await timeCalls(async () => (await app.request(`/v1/balances/${pick()}`)).json(), {
                samples: 2_000,
                warmup: 100,
              }),
            );
            health.push(
              await timeCalls(async () => (await app.request("/health")).json(), { samples: 2_000, warmup: 100 }),
            );
            await ledger.snapshot();
            let bundle: unknown;
            proofGen.push(
              await timeCalls(async () => (bundle = await ledger.proofBundle(pick())), { samples: 20, warmup: 2 }),
            );
            proofVerify.push(
              await timeCalls(() => verifyProofBundle(bundle, ledger.publicKey), { samples: 500, warmup: 20 }),
            );
            return rate;
          });
        }),
      );
      ingestUnsigned.push(await withDb(async (db) => (await appendFromJetStream(nc, db, usage, false)).rate));
      process.stdout.write(
        `repeat ${r + 1}/${repeats}: JetStream signed ${ingest.at(-1)?.toFixed(0)}/s, unsigned ${ingestUnsigned.at(-1)?.toFixed(0)}/s, direct ${direct.at(-1)?.toFixed(0)}/s, bare PostgreSQL ${bare.at(-1)?.toFixed(0)}/s\n`,
      );
    }
  } finally {
    await nc.close();
  }
  const snap = await withDb((db) => snapshotBench(db, accounts));
  report({
    ingest,
    ingestUnsigned,
    direct,
    bare,
    ingestCpu,
    directCpu,
    reads,
    httpReads,
    health,
    proofGen,
    proofVerify,
    snap,
  });
}

/**
 * One machine per paying account, as in a household mesh: each spend is signed by a machine of the
 * account's owner, and the ingest checks it against this roster (apps/ledger ingest/verify-usage.ts).
 */
const payers = Array.from({ length: ledgerAccounts }, (_, i) => {
  const identity = generateIdentity();
  return { machine: `box${i}`, owner: `acct${i}`, identity, privateKey: privateKeyFromPem(identity.privateKeyPem) };
});
const payerRoster = staticRoster(
  payers.map((p, i) =>
    RosterEntry.parse({
      id: `m${i}`,
      name: p.machine,
      owner: p.owner,
      meshIp: `100.64.${Math.floor(i / 250)}.${(i % 250) + 2}`,
      wireguardPublicKey: p.identity.publicKey,
      identityPublicKey: p.identity.publicKey,
      endpoints: [],
      state: "online",
      lastHeartbeatAt: null,
      staleKey: false,
    }),
  ),
);

function makeEvents(n: number, repeat: number): UsageEvent[] {
  const at = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => ({
    eventId: `b${repeat}-${i}`,
    jobId: `job-${i}`,
    kind: "spend" as const,
    account: `acct${i % ledgerAccounts}`,
    counterparty: "peer",
    servedBy: "box",
    model: "tiny",
    tokens: 10,
    amount: 1 + (i % 1000),
    at,
  }));
}

interface CpuPerEvent {
  nodeUs: number;
  /** NaN when the database's processes cannot be read (not on this machine). */
  pgUs: number;
}

/** CPU time (ms) of the database's backends serving `db`, from /proc; NaN when unreadable. */
async function backendCpuMs(dbName: string): Promise<number> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
  try {
    const pids = await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${dbName}`;
    let ticks = 0;
    for (const { pid } of pids) {
      // Fields after the command name: utime and stime are the 12th and 13th (clock ticks, 100 Hz).
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return ticks * 10;
  } catch {
    return Number.NaN;
  } finally {
    await admin.end();
  }
}

/**
 * Runs `work` over `events` events and measures its rate and its CPU per event (this process and the database's
 * backends).
 */
async function measured(
  db: OpenedDb & { url?: string },
  events: number,
  work: () => Promise<void>,
): Promise<{ rate: number; cpu: CpuPerEvent }> {
  const dbName = new URL(db.url ?? "postgres://x/unknown").pathname.slice(1);
  const pg0 = await backendCpuMs(dbName);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await work();
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu0);
  const pg = (await backendCpuMs(dbName)) - pg0;
  return {
    rate: events / (elapsed / 1000),
    cpu: { nodeUs: (used.user + used.system) / events, pgUs: (pg * 1000) / events },
  };
}

/** Usage is paid from granted credits (a bare earn is refused): every payer gets a grant first, not timed. */
async function grantPayers(ledger: Ledger): Promise<void> {
  await ledger.append(
    Array.from({ length: ledgerAccounts }, (_, k) =>
      fromRequest({ kind: "adjust", eventId: `grant-${k}`, account: `acct${k}`, delta: payerGrant, reason: "bench" }),
    ),
  );
  ledger.stats.applied = 0;
}

/** More than any bench run spends from one account. */
const payerGrant = 1_000_000_000;

/**
 * The limit this machine's PostgreSQL sets: the entries the ledger writes for `usage` (each event
 * a debit and its paired earn), hashed and chained in this process exactly as the ledger does,
 * inserted with one unnest INSERT per 1,000 events in its own transaction, through the entries
 * table's chain-check trigger. No NATS, no rules, no balances: what is left is hashing, the
 * insert and the commit.
 */
async function bareChainedInsert(db: OpenedDb & { url?: string }, usage: UsageEvent[]): Promise<number> {
  const sql = postgres(db.url ?? "", { max: 1, onnotice: () => undefined });
  try {
    let prevHash = GENESIS_HASH;
    let seq = 0;
    const createdAtMs = Date.now();
    const started = performance.now();
    for (let i = 0; i < usage.length; i += 1000) {
      const rows: (LedgerRecord & { hash: string })[] = [];
      for (const u of usage.slice(i, i + 1000)) {
        const ev = fromUsage(u);
        for (const [eventId, kind, account, delta, ref] of [
          [u.eventId, "spend", u.account, -u.amount, ""],
          [`${u.eventId}#earn`, "earn", u.counterparty, u.amount, u.eventId],
        ] as const) {
          const record: LedgerRecord = {
            seq,
            eventId,
            kind,
            account,
            delta,
            heldDelta: 0,
            ref,
            meta: ev.meta,
            payloadHash: ev.payloadHash,
            createdAtMs,
            prevHash,
          };
          prevHash = entryHash(record);
          rows.push({ ...record, hash: prevHash });
          seq += 1;
        }
      }
      const col = <T>(f: (r: LedgerRecord & { hash: string }) => T) => rows.map(f);
      await sql.begin(async (tx) => {
        await tx`insert into entries (seq, event_id, kind, account, delta, held_delta, ref, meta, payload_hash, created_at_ms, prev_hash, hash)
          select * from unnest(${col((r) => r.seq)}::bigint[], ${col((r) => r.eventId)}::text[], ${col((r) => r.kind)}::text[], ${col((r) => r.account)}::text[],
            ${col((r) => r.delta)}::bigint[], ${col((r) => r.heldDelta)}::bigint[], ${col((r) => r.ref)}::text[], ${col((r) => r.meta)}::text[],
            ${col((r) => r.payloadHash)}::text[], ${col((r) => r.createdAtMs)}::bigint[], ${col((r) => r.prevHash)}::text[], ${col((r) => r.hash)}::text[])`;
      });
    }
    return usage.length / ((performance.now() - started) / 1000);
  } finally {
    await sql.end();
  }
}

async function appendDirect(
  db: OpenedDb & { url?: string },
  usage: UsageEvent[],
): Promise<{ rate: number; cpu: CpuPerEvent }> {
  const ledger = new Ledger(db.db, generateSigner(ORIGIN), ORIGIN);
  await grantPayers(ledger);
  return measured(db, usage.length, async () => {
    await ledger.append(usage.map(fromUsage));
  });
}

/** `signed`: every event signed by its payer's machine and checked at ingest; else the unsigned path before #18. */
async function appendFromJetStream(
  nc: NatsConnection,
  db: OpenedDb & { url?: string },
  usage: UsageEvent[],
  signed: boolean,
): Promise<{ rate: number; cpu: CpuPerEvent }> {
  const prefix = `b${randomBytes(5).toString("hex")}`;
  const { stream } = await ensureUsageConsumer(nc, prefix, "ledger");
  try {
    const js = jetstream(nc);
    const signerOf = (ev: UsageEvent) => {
      const payer = payers[Number(ev.account.slice("acct".length))];
      if (!signed || payer === undefined) return undefined;
      return (parts: Parameters<typeof signRequest>[0]) => signRequest(parts, payer);
    };
    for (let i = 0; i < usage.length; i += 1000)
      await Promise.all(usage.slice(i, i + 1000).map((ev) => publishUsage(js, prefix, ev, signerOf(ev))));
    const ledger = new Ledger(db.db, generateSigner(ORIGIN), ORIGIN);
    await grantPayers(ledger);
    let ingest: { stop: () => Promise<void> } | undefined;
    try {
      // The clock stops when the last event is committed. Stopping the ingest is not timed: it
      // waits for the pull request in flight, which on an empty stream only ends when it expires
      // (up to a second, which this measurement counted before).
      return await measured(db, usage.length, async () => {
        ingest = startIngest({
          nc,
          ledger,
          stream,
          durable: "ledger",
          batchMax: 1000,
          log: () => undefined,
          onStall: (ms) => {
            throw new Error(`bench: an append stalled for ${ms} ms`);
          },
          ...(signed ? { verify: usageVerifier(rosterDirectory(payerRoster)) } : {}),
        });
        await untilApplied(ledger, usage.length);
      });
    } finally {
      await ingest?.stop();
    }
  } finally {
    await jetstreamManager(nc)
      .then((m) => m.streams.delete(subjectsFor(prefix).usageStream.name))
      .catch(() => undefined);
  }
}

/** Resolves once the ledger's appends have counted `n` events (the stats move right after each commit). */
async function untilApplied(ledger: Ledger, n: number): Promise<void> {
  const deadline = Date.now() + ingestTimeoutMs;
  while (ledger.stats.applied < n) {
    if (Date.now() > deadline)
      throw new Error(`bench: ${ledger.stats.applied} of ${n} events applied after ${ingestTimeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function snapshotBench(
  db: OpenedDb & { url?: string },
  n: number,
): Promise<{ accounts: number; snapshotMs: number[]; treeOnlyMs: number[]; treeCpuMs: number[] }> {
  const sql = postgres(db.url ?? "", { max: 1, onnotice: () => undefined });
  try {
    for (let i = 0; i < n; i += 100_000) {
      const count = Math.min(100_000, n - i);
      // Balances change only on the append path (migration 0007): the bench fills them as it would.
      await sql.begin(async (tx) => {
        await tx`select set_config('potluck.ledger_append', 'on', true)`;
        await tx`insert into balances (account, balance, held, as_of_seq) select 'm' || lpad(g::text, 8, '0'), g % 100000, 0, 0 from generate_series(${i}::int, ${i + count - 1}::int) g`;
      });
    }
  } finally {
    await sql.end();
  }
  const snapshotMs: number[] = [];
  const treeOnlyMs: number[] = [];
  const treeCpuMs: number[] = [];
  const rows = Array.from({ length: n }, (_, i) => ({
    account: `m${String(i).padStart(8, "0")}`,
    balance: i % 100_000,
  }));
  for (let r = 0; r < repeats; r += 1) {
    let started = performance.now();
    await takeSnapshot(db.db);
    snapshotMs.push(performance.now() - started);
    started = performance.now();
    const cpu = process.cpuUsage();
    merkleRoot(balanceLeaves(rows, 0).leaves);
    treeOnlyMs.push(performance.now() - started);
    const used = process.cpuUsage(cpu);
    // CPU time is reported beside wall time: on a shared, loaded machine the two differ a lot.
    treeCpuMs.push((used.user + used.system) / 1000);
  }
  return { accounts: n, snapshotMs, treeOnlyMs, treeCpuMs };
}

/** The real service over the bench's database, ingest off, so reads go through what production runs. */
async function withLedgerService<T>(databaseUrl: string, run: (service: LedgerService) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), "ledger-bench-"));
  const config = loadLedgerConfig(
    {
      DATABASE_URL: databaseUrl,
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_LEDGER_INGEST: "0",
      POTLUCK_LEDGER_ANCHOR_FILE: "off",
      POTLUCK_LEDGER_ORIGIN: ORIGIN,
    },
    [],
  );
  const service = await startLedgerService(config);
  try {
    return await run(service);
  } finally {
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function withDb<T>(run: (db: OpenedDb & { url?: string }) => Promise<T>): Promise<T> {
  const name = `ledger_bench_${randomBytes(5).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = await openLedgerDb({ databaseUrl: url.href, dataDir: "/nonexistent" });
  try {
    return await run({ ...db, url: url.href });
  } finally {
    await db.close();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

function report(r: {
  ingest: number[];
  ingestUnsigned: number[];
  direct: number[];
  bare: number[];
  ingestCpu: CpuPerEvent[];
  directCpu: CpuPerEvent[];
  reads: Summary[];
  httpReads: Summary[];
  health: Summary[];
  proofGen: Summary[];
  proofVerify: Summary[];
  snap: { accounts: number; snapshotMs: number[]; treeOnlyMs: number[]; treeCpuMs: number[] };
}): void {
  const ingest = median(r.ingest);
  const ingestUnsigned = median(r.ingestUnsigned);
  const direct = median(r.direct);
  const bare = median(r.bare);
  const reads = medianOf(r.reads);
  const httpReads = medianOf(r.httpReads);
  const health = medianOf(r.health);
  const gen = medianOf(r.proofGen);
  const ver = medianOf(r.proofVerify);
  const snapMs = median(r.snap.snapshotMs);
  const treeMs = median(r.snap.treeOnlyMs);
  const treeCpuMs = median(r.snap.treeCpuMs);
  const load = loadavg()[0] ?? 0;
  const cpuOf = (xs: CpuPerEvent[]) => ({
    nodeUs: median(xs.map((x) => x.nodeUs)),
    pgUs: median(xs.map((x) => x.pgUs)),
  });
  const ingestCpu = cpuOf(r.ingestCpu);
  const directCpu = cpuOf(r.directCpu);
  const rows = [
    [
      "events/s from JetStream, signed (entry pairs, hash chain, batches of 1,000)",
      ingest.toFixed(0),
      `goal ≥ 0.6× the bare limit: ${(ingest / bare).toFixed(2)}×; ${(ingest / direct).toFixed(2)}× the direct append rate`,
    ],
    [
      "events/s from JetStream, unsigned (no signer check, as before #18)",
      ingestUnsigned.toFixed(0),
      `${(ingestUnsigned / bare).toFixed(2)}× the bare limit; signed ÷ unsigned ${(ingest / ingestUnsigned).toFixed(2)}×`,
    ],
    ["events/s direct (no NATS), baseline", direct.toFixed(0), `${(direct / bare).toFixed(2)}× the bare limit`],
    [
      "events/s bare PostgreSQL chained insert (same entries and hashing), limit",
      bare.toFixed(0),
      "no NATS, no service code, chain-check trigger on",
    ],
    [
      "CPU µs per event from JetStream: Node / PostgreSQL backends",
      `${fmt(ingestCpu.nodeUs)} / ${fmt(ingestCpu.pgUs)}`,
      `direct: ${fmt(directCpu.nodeUs)} / ${fmt(directCpu.pgUs)} (NATS server not counted)`,
    ],
    ["balance read p50 / p95 (Ledger.balance, ms)", `${fmt(reads.p50)} / ${fmt(reads.p95)}`, ""],
    [
      "balance read over HTTP p50 / p95 (ms)",
      `${fmt(httpReads.p50)} / ${fmt(httpReads.p95)}`,
      `GET /health baseline p50 ${fmt(health.p50)} ms`,
    ],
    [
      `snapshot of ${r.snap.accounts.toLocaleString("en")} accounts (ms)`,
      fmt(snapMs),
      `goal ≤ 3,000 ms; leaves + tree alone ${fmt(treeMs)} ms wall, ${fmt(treeCpuMs)} ms CPU`,
    ],
    [
      `proof bundle generation p50 (${ledgerAccounts} accounts, ${events.toLocaleString("en")} entries, ms)`,
      fmt(gen.p50),
      "recomputes balances as of the snapshot",
    ],
    ["proof bundle verification p50 (ms)", fmt(ver.p50), "offline, log key only"],
  ];
  process.stdout.write(
    `\nledger bench (${repeats} repeats, medians; 1-minute load average ${load.toFixed(1)} on ${cpus().length} CPUs)\n`,
  );
  for (const [what, value, note] of rows)
    process.stdout.write(`  ${String(what).padEnd(78)} ${String(value).padStart(14)}  ${note}\n`);
  mkdirSync(join(repoRoot, "tools/bench/results"), { recursive: true });
  writeFileSync(
    resultsFile,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        events,
        accounts,
        repeats,
        raw: r,
        loadAverage: load,
        medians: {
          treeCpuMs,
          ingest,
          ingestUnsigned,
          direct,
          bare,
          ingestCpu,
          directCpu,
          reads,
          httpReads,
          health,
          proofGen: gen,
          proofVerify: ver,
          snapshotMs: snapMs,
          treeOnlyMs: treeMs,
        },
      },
      null,
      2,
    ),
  );
  process.stdout.write(`\nwrote ${resultsFile}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`ledger bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
