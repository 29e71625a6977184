import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Defaults, natsClusterConnectOptions, Roster, subjectsFor } from "@potluck/protocol";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { householdModel as model } from "../../src/demo/household-lab.js";
import {
  attemptTimeoutMs,
  failureSpans,
  startPromptLoop,
  type Attempt,
  type PromptLoop,
} from "../../src/demo/prompt-loop.js";
import {
  type Cluster,
  clusterDatabases,
  clusterHub,
  type ClusterProcess,
  createLab,
  type Lab,
  type LabHost,
  type LabProcess,
  pollUntil,
  type PrivatePostgres,
  run,
  startClusterOnPostgres,
  startHubSidecar,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// Prompts between machines of two owners while the community's cluster is broken under them.
// "home" (owner home) and "guest" (owner guest) run the real sidecar with the generated TEST model,
// joined with `potluck join` to a cluster of three nats-servers (usage stream at replicas 3), two
// coordinators and two ledgers on a PostgreSQL of this suite's own. Each asks the other once a
// second, pinned to it; every such prompt places a hold on the usage stream that the server reads
// back by sequence before it answers, and settles after. One NATS server is killed at a time (the
// usage stream's leader, then the one a sidecar is connected to), then a ledger, then the
// coordinator both sidecars read the roster from, each with SIGKILL and brought back after
// downMs; PostgreSQL is crashed and restarted. No run of failed prompts may outlast
// failureWindowMsMax, prompts after the last recovery all succeed, and the ledger holds exactly
// one hold per job, closed once: a settlement for each prompt that succeeded.
const natsHosts = ["n1", "n2", "n3"] as const;
const owners = { home: "guest", guest: "home" } as const;
type Side = keyof typeof owners;

/**
 * The longest a run of failed prompts may last, from the first failure's start to the end of the
 * next prompt that succeeds. It is what the mechanism allows, added up for the worst case (a NATS
 * server that is both the sidecar's connection and the usage stream's leader):
 * - The client sees the dead server's connection close at once (the kernel resets it) and moves
 *   to another server of the list at once; one it already tried waits NatsConnectLimits'
 *   reconnectWaitMs + jitter (2.5 s).
 * - The usage stream's two other replicas elect a leader after missing its heartbeats for
 *   nats-server's Raft election timeout (randomized, at most 9 s in 2.9); until then neither a
 *   hold's publish nor the server's read of it is answered.
 * - A prompt that is failing takes at most the hold's publish (3 attempts × 2 s acknowledgement
 *   wait, usage/publisher.ts) or the loop's own 10 s timeout per attempt; the window closes with
 *   the end of the next successful prompt, which starts one 1 s gap later and takes a moment.
 * 2.5 + 9 + 10 + 1 + 2.5 s is 25 s; a loaded machine gets the rest of 30 s. A ledger, a
 * coordinator or PostgreSQL are not on a prompt's path at all (the roster is cached), so they
 * must stay well inside it.
 */
const failureWindowMsMax = 30_000;
/** How long each part stays dead before it is brought back (as cluster.test.ts). */
const downMs = 10_000;
/** Prompts before the first fault, and after the last part is back. */
const quietMs = 15_000;
/** Every node process starts through tsx on a loaded 2-core machine. */
const setupMs = 900_000;
/** Once the prompts stop, every hold must be closed in the chain within this. */
const drainMs = 180_000;
const grant = 5_000_000;

let lab: Lab;
let pg: PrivatePostgres;
let cluster: Cluster;
let nc: NatsConnection;
let ledgerDb: postgres.Sql;
const loops: Partial<Record<Side, PromptLoop>> = {};
const sidecars: Partial<Record<Side, LabProcess>> = {};

/**
 * Not in `npm test`: on this shared 2-core host it failed three of its last four runs, each time
 * on a ledger or timing check and never on the 30 s bound (a prompt failing before any fault;
 * served prompts whose hold was voided instead of settled, cause not found: README, "What is not
 * built yet"). Run it with POTLUCK_CLUSTER_PROMPTS=1.
 */
const enabled = process.env.POTLUCK_CLUSTER_PROMPTS === "1";

beforeAll(async () => {
  if (!enabled) return;
  lab = await createLab({ hosts: ["home", "guest"], mesh: false, extraHosts: [...natsHosts], rootLink: true });
  ({ pg, cluster } = await startClusterOnPostgres(lab, { hosts: [...natsHosts] }));
  nc = await connect({
    ...natsClusterConnectOptions(cluster.natsUrl),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  });
  ledgerDb = postgres(pg.url(clusterDatabases.ledger), { max: 2, onnotice: () => undefined });
  // Both machines enroll with, and read the roster from, the coordinator that will be killed.
  const hub = clusterHub(cluster);
  for (const side of sides()) await hub.join(lab.host(side), side);
  await Promise.all(
    sides().map(async (side) => {
      sidecars[side] = await startHubSidecar(hub, lab.host(side), { POTLUCK_OWNER: side, POTLUCK_HEAD_START: "0" });
    }),
  );
  expect(await pollUntil(() => rosterOnline(sides()), { timeoutMs: 120_000, intervalMs: 500 })).toBe(true);
  for (const side of sides()) await cluster.grant(side, grant, `grant-${side}`);
  // Each machine loads its model with a prompt of its own (not metered), then asks the other once,
  // so the loops start with both models loaded and each size published.
  for (const side of sides()) expect(await ask(lab.host(side), side)).toBe(side);
  for (const side of sides()) expect(await ask(lab.host(side), owners[side])).toBe(owners[side]);
}, setupMs);

afterAll(async () => {
  await Promise.all(Object.values(loops).map((l) => l.stop().catch(() => undefined)));
  await ledgerDb?.end({ timeout: 5 }).catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await cluster?.stop().catch(() => undefined);
  await pg?.destroy().catch(() => undefined);
  await lab?.teardown();
}, 180_000);

function sides(): Side[] {
  return Object.keys(owners) as Side[];
}

async function rosterOnline(names: readonly string[]): Promise<boolean> {
  const res = await fetch(`${cluster.coordinatorUrls[0]}/v1/roster`, { signal: AbortSignal.timeout(5_000) }).catch(
    () => undefined,
  );
  if (res?.ok !== true) return false;
  const roster = Roster.parse(await res.json());
  return names.every((n) => roster.machines.some((m) => m.name === n && m.state === "online"));
}

/** One chat completion on `from`'s own sidecar pinned to `on`; the machine that served it. */
async function ask(from: LabHost, on: string): Promise<string> {
  const body = { model, messages: [{ role: "user", content: "hello" }], max_tokens: 8, potluck: { on } };
  const url = `http://127.0.0.1:${Defaults.sidecarPort}/v1/chat/completions`;
  const argv = ["curl", "-s", "-m", "240", "-H", "content-type: application/json", "-d", JSON.stringify(body), url];
  const res = await from.exec(argv, { timeoutMs: 300_000 });
  return (JSON.parse(res.stdout) as { served_by?: string }).served_by ?? res.stdout;
}

/** A prompt succeeded when the machine it was pinned to answered it. */
function served(attempts: readonly Attempt[], by: string): Attempt[] {
  return attempts.map((a) => (a.ok && a.servedBy !== by ? { ...a, ok: false, error: `served by ${a.servedBy}` } : a));
}

function attemptsOf(side: Side): Attempt[] {
  return served(loops[side]?.attempts() ?? [], owners[side]);
}

/** Until both loops have a prompt that started after `after` and succeeded. */
async function bothServedAfter(after: number): Promise<boolean> {
  return pollUntil(() => sides().every((s) => attemptsOf(s).some((a) => a.start > after && a.ok)), {
    timeoutMs: failureWindowMsMax * 2,
    intervalMs: 250,
  });
}

/** The NATS server `host`'s sidecar is connected to (the only client of port 4222 in that namespace). */
async function natsServerOf(host: LabHost): Promise<ClusterProcess | undefined> {
  const res = await host.exec(["ss", "-Htn", "state", "established", "( dport = :4222 )"]);
  return cluster.nats.find((n) => res.stdout.includes(`${n.host.underlayIp}:4222`));
}

interface Fault {
  name: string;
  downAt: number;
  backAt: number;
}

/** Kills `part` (SIGKILL or a crash), waits downMs, brings it back, and waits until prompts are served again. */
async function fault(name: string, part: { kill(): Promise<void>; start(): Promise<void> }): Promise<Fault> {
  const downAt = Date.now();
  await part.kill();
  await sleep(downMs);
  await part.start();
  const backAt = Date.now();
  await bothServedAfter(backAt);
  // A few quiet prompts more, so one fault's window never runs into the next one's.
  await sleep(5_000);
  return { name, downAt, backAt };
}

describe.skipIf(!enabled)("prompts between owners while the cluster's parts die", () => {
  it(`never fail for longer than ${failureWindowMsMax / 1000} s, and every served prompt is settled once`, async () => {
    const jsm = await jetstreamManager(nc);
    const stream = subjectsFor(cluster.prefix).usageStream.name;
    expect((await jsm.streams.info(stream)).config.num_replicas).toBe(3);
    for (const side of sides())
      loops[side] = startPromptLoop(lab.host(side), {
        port: Defaults.sidecarPort,
        model,
        gapMs: 1_000,
        maxTokens: 8,
        on: owners[side],
      });
    const loopsAt = Date.now();
    await sleep(quietMs);

    const faults: Fault[] = [];
    const connected = async () =>
      (await Promise.all(sides().map((s) => natsServerOf(lab.host(s))))).map((n) => n?.name);
    const notes = [`sidecars on ${(await connected()).join(", ")}`];
    const leader = (await jsm.streams.info(stream)).cluster?.leader;
    const leaderNode = cluster.nats.find((n) => n.name === `nats-${leader}`);
    expect(leaderNode, `stream leader ${leader}`).toBeDefined();
    const nats = leaderNode as ClusterProcess;
    faults.push(await fault(`${nats.name} (stream leader)`, nats));
    notes.push(`sidecars on ${(await connected()).join(", ")}`);
    const homeNats = (await natsServerOf(lab.host("home"))) as ClusterProcess;
    expect(homeNats, "the NATS server home's sidecar is connected to").toBeDefined();
    faults.push(await fault(`${homeNats.name} (home's server)`, homeNats));
    notes.push(`sidecars on ${(await connected()).join(", ")}`);
    const ledger = cluster.ledgers[0] as ClusterProcess;
    faults.push(await fault(ledger.name, ledger));
    const coordinator = cluster.coordinators[0] as ClusterProcess;
    faults.push(await fault(`${coordinator.name} (the sidecars')`, coordinator));
    faults.push(await fault("PostgreSQL (crash)", { kill: () => pg.stop("immediate"), start: () => pg.start() }));
    await sleep(quietMs);

    const attempts = Object.fromEntries(
      await Promise.all(sides().map(async (s) => [s, served((await loops[s]?.stop()) ?? [], owners[s])] as const)),
    ) as Record<Side, Attempt[]>;
    const rows = faults.map((f, i) => windowsOf(f, faults[i + 1]?.downAt ?? Infinity, attempts));
    const report = [
      ...notes,
      table(rows),
      ...sides().map((s) => `${s}: ${attempts[s].length} prompts, ${attempts[s].filter((a) => a.ok).length} served`),
    ].join("\n");
    console.log(`cluster prompts, worst failure window per fault (bound ${failureWindowMsMax} ms):\n${report}`);

    for (const side of sides()) {
      // The loops ran all along, and nothing failed before the first fault.
      expect(attempts[side].length, report).toBeGreaterThan(40);
      expect(
        attempts[side].filter((a) => a.start < (faults[0]?.downAt ?? 0) && !a.ok),
        report,
      ).toEqual([]);
      expect(attempts[side][0]?.start).toBeGreaterThanOrEqual(loopsAt - 1_000);
      // Every prompt after the last part came back and the first one served after it succeeded.
      const lastBack = faults.at(-1)?.backAt ?? 0;
      const settledIn = attempts[side].find((a) => a.start > lastBack && a.ok)?.start ?? Infinity;
      expect(
        attempts[side].filter((a) => a.start > settledIn && !a.ok),
        report,
      ).toEqual([]);
    }
    for (const row of rows) expect(row.worstMs, `${row.name}\n${report}`).toBeLessThanOrEqual(failureWindowMsMax);

    await expectLedgerBalanced(attempts, report);
  }, 1_800_000);
});

interface FaultRow {
  name: string;
  downMs: number;
  failed: Record<Side, number>;
  worstMs: number;
  errors: string[];
}

/**
 * The failure windows a fault caused: runs of failed prompts that began after it (or in the one
 * prompt timeout before, which a prompt in flight may fail by) and before the next fault. A window
 * still open at the end lasts until the last attempt.
 */
function windowsOf(f: Fault, nextDownAt: number, attempts: Record<Side, Attempt[]>): FaultRow {
  const row: FaultRow = {
    name: f.name,
    downMs: f.backAt - f.downAt,
    failed: { home: 0, guest: 0 },
    worstMs: 0,
    errors: [],
  };
  for (const side of sides()) {
    const last = attempts[side].at(-1)?.end ?? 0;
    for (const span of failureSpans(attempts[side])) {
      if (span.from < f.downAt - attemptTimeoutMs || span.from >= nextDownAt - attemptTimeoutMs) continue;
      row.failed[side] += span.failures;
      row.worstMs = Math.max(row.worstMs, (span.recoveredAt ?? last) - span.from);
      row.errors.push(...span.errors.slice(0, 2).map((e) => `${side}: ${e.slice(0, 160)}`));
    }
  }
  return row;
}

function table(rows: readonly FaultRow[]): string {
  const lines = rows.map(
    (r) =>
      `| ${r.name} | ${(r.downMs / 1000).toFixed(1)} s | ${r.failed.home} / ${r.failed.guest} | ${(r.worstMs / 1000).toFixed(1)} s |${r.errors.length === 0 ? "" : ` ${r.errors.slice(0, 3).join("; ")}`}`,
  );
  return ["| fault | down | failed prompts home→guest / guest→home | worst window | errors", ...lines].join("\n");
}

/**
 * The metering rules (apps/ledger: hold, then exactly one settle or void closing it): every job
 * in the chain has one hold, closed once; each owner's settlements are its prompts that were
 * served (a prompt that failed after its hold was voided, or settled if the server finished it
 * after the loop gave up: both close the hold); nothing stays held, credits are conserved, nothing
 * was refused or parked, and `potluck ledger verify` passes.
 */
async function expectLedgerBalanced(attempts: Record<Side, Attempt[]>, report: string): Promise<void> {
  type Row = { event_id: string; kind: string; account: string };
  const jobs = async () => {
    const rows = await ledgerDb<Row[]>`
      select event_id, kind, account from entries where kind in ('hold', 'settle', 'void', 'refund')`;
    const byJob = new Map<string, Row[]>();
    for (const r of rows) {
      const job = r.event_id.slice(0, r.event_id.lastIndexOf(":"));
      byJob.set(job, [...(byJob.get(job) ?? []), r]);
    }
    return byJob;
  };
  const closed = (rows: Row[]) => rows.filter((r) => r.kind === "settle" || r.kind === "void").length;
  let byJob = new Map<string, Row[]>();
  await pollUntil(
    async () => {
      byJob = await jobs();
      return [...byJob.values()].every((rows) => closed(rows) === 1);
    },
    { timeoutMs: drainMs, intervalMs: 1_000 },
  );
  const wrong = [...byJob].filter(
    ([, rows]) => rows.filter((r) => r.kind === "hold").length !== 1 || closed(rows) !== 1,
  );
  expect(wrong.slice(0, 5), `${report}\n${await whatBecameOf(wrong.slice(0, 5).map(([job]) => job))}`).toEqual([]);
  const warmups = 1;
  for (const side of sides()) {
    const settles = [...byJob.values()].filter((rows) => rows.some((r) => r.kind === "settle" && r.account === side));
    const ok = attempts[side].filter((a) => a.ok).length;
    // At least every served prompt is settled; more only by prompts the loop gave up on that the server still finished.
    expect(settles.length - warmups, `${side}'s settlements\n${report}`).toBeGreaterThanOrEqual(ok);
    const gaveUp = attempts[side].filter((a) => !a.ok && /abort|timeout/i.test(a.error ?? "")).length;
    expect(settles.length - warmups - ok, `${side}'s settlements\n${report}`).toBeLessThanOrEqual(gaveUp);
  }
  const balances = await ledgerDb<{ account: string; balance: string; held: string }[]>`
    select account, balance, held from balances where account in ('home', 'guest')`;
  expect(balances.map((b) => Number(b.held))).toEqual([0, 0]);
  expect(balances.reduce((sum, b) => sum + Number(b.balance), 0)).toBe(2 * grant);
  const refused = await ledgerDb`select count(*)::int as n from rejections`;
  const parked = await ledgerDb`select count(*)::int as n from parked`;
  expect([refused[0]?.n, parked[0]?.n], report).toEqual([0, 0]);
  const verify = await run([process.execPath, join(repoRoot, "bin/potluck.mjs"), "ledger", "verify"], {
    env: {
      ...process.env,
      DATABASE_URL: pg.url(clusterDatabases.ledger),
      POTLUCK_LEDGER_KEY_FILE: cluster.ledgerKeyFile,
    },
    timeoutMs: 300_000,
  });
  expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
  expect(verify.stdout).toMatch(/ledger verifies/);
}

/** For a failure message: what the ledger refused, and what the sidecars logged about `jobs`. */
async function whatBecameOf(jobs: readonly string[]): Promise<string> {
  const refused = await ledgerDb<{ event_id: string; code: string; reason: string }[]>`
    select event_id, code, reason from rejections order by id limit 20`;
  const logged = sides().flatMap((side) =>
    (sidecars[side]?.output() ?? "")
      .split("\n")
      .filter((line) => jobs.some((job) => line.includes(job)))
      .map((line) => `${side}: ${line.slice(0, 400)}`),
  );
  return [...refused.map((r) => `refused ${r.event_id} ${r.code}: ${r.reason}`), ...logged].join("\n");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
