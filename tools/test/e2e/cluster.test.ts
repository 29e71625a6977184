import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsClusterConnectOptions, Roster, subjectsFor } from "@potluck/protocol";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Cluster,
  clusterDatabases,
  createLab,
  enrollSimMachine,
  type Lab,
  pollUntil,
  type PrivatePostgres,
  run,
  type SimMachine,
  startClusterOnPostgres,
  startSimHeartbeats,
  startUsageLoad,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// A community on a NATS cluster: three nats-servers on three lab hosts (usage stream at replicas
// 3), two coordinators and two ledgers on a PostgreSQL of this suite's own, four machines of two
// households reporting signed usage all along. One NATS server (the stream's leader), a ledger and
// a coordinator are killed with SIGKILL and PostgreSQL is crashed (pg_ctl -m immediate), each then
// brought back. Afterwards every acknowledged event is in the chain exactly once, `potluck
// ledger verify` passes, and no coordinator ever reported a machine offline (which it only does
// after HeartbeatTiming.offlineAfterMs of silence: the heartbeat grace).
const hosts = ["n1", "n2", "n3"] as const;
const households = { home: ["home-a", "home-b"], guest: ["guest-a", "guest-b"] } as const;
/** Every node process starts through tsx on a loaded 2-core machine. */
const clusterUpMs = 600_000;
/** How long each fault lasts before the part is brought back. */
const downMs = 10_000;
/** Once the load stops, every acknowledged event must be in the chain within this. */
const drainMs = 180_000;

let lab: Lab;
let pg: PrivatePostgres;
let cluster: Cluster;
let nc: NatsConnection;
let ledgerDb: postgres.Sql;

beforeAll(async () => {
  lab = await createLab({ hosts: [], mesh: false, extraHosts: [...hosts], rootLink: true });
  ({ pg, cluster } = await startClusterOnPostgres(lab, { hosts: [...hosts] }));
  nc = await connect({
    ...natsClusterConnectOptions(cluster.natsUrl),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  });
  ledgerDb = postgres(pg.url(clusterDatabases.ledger), { max: 2, onnotice: () => undefined });
}, clusterUpMs);

afterAll(async () => {
  await ledgerDb?.end({ timeout: 5 }).catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await cluster?.stop().catch(() => undefined);
  await pg?.destroy().catch(() => undefined);
  await lab?.teardown();
}, 180_000);

/** Which of `ids` the ledger's chain holds, and how many entries each has. */
async function inChain(ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await ledgerDb<{ event_id: string; n: string }[]>`
    select event_id, count(*) as n from entries where event_id = any(${ids as string[]}) group by event_id`;
  return new Map(rows.map((r) => [r.event_id, Number(r.n)]));
}

/** Polls every coordinator's roster each second; any machine not online is recorded (down coordinators are skipped). */
function watchRosters(names: readonly string[]): { stop(): void; notOnline: string[] } {
  const notOnline: string[] = [];
  const timer = setInterval(() => {
    for (const url of cluster.coordinatorUrls)
      void fetch(`${url}/v1/roster`, { signal: AbortSignal.timeout(2_000) })
        .then(async (res) => Roster.parse(await res.json()))
        .then((roster) => {
          for (const m of roster.machines)
            if (names.includes(m.name) && m.state !== "online")
              notOnline.push(`${new Date().toISOString()} ${url}: ${m.name} ${m.state}`);
        })
        .catch(() => undefined);
  }, 1_000);
  return { stop: () => clearInterval(timer), notOnline };
}

async function rosterOnline(url: string, names: readonly string[]): Promise<boolean> {
  const res = await fetch(`${url}/v1/roster`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  if (res?.ok !== true) return false;
  const roster = Roster.parse(await res.json());
  return names.every((n) => roster.machines.some((m) => m.name === n && m.state === "online"));
}

describe("a community on a NATS cluster, with servers killed under load", () => {
  it("keeps every event exactly once through a NATS server, a ledger, a coordinator and PostgreSQL dying", async () => {
    const machines: SimMachine[] = [];
    // Half enroll through each coordinator: the roster is the database's, not a process's.
    for (const [owner, names] of Object.entries(households))
      for (const [i, name] of names.entries())
        machines.push(
          await enrollSimMachine(cluster.coordinatorUrls[i % 2] as string, cluster.adminSecret, name, owner),
        );
    const names = machines.map((m) => m.name);
    const beats = startSimHeartbeats(nc, cluster.prefix, machines);
    for (const url of cluster.coordinatorUrls)
      expect(await pollUntil(() => rosterOnline(url, names), { timeoutMs: 60_000, intervalMs: 500 })).toBe(true);
    // Each household can pay for the whole run: spends are 1 micro-credit each.
    for (const owner of Object.keys(households)) await cluster.grant(owner, 1_000_000, `grant-${owner}`);
    const jsm = await jetstreamManager(nc);
    const stream = subjectsFor(cluster.prefix).usageStream.name;
    const info = await jsm.streams.info(stream);
    expect(info.config.num_replicas).toBe(3);
    expect(info.cluster?.replicas?.length).toBe(2);

    const watch = watchRosters(names);
    const load = startUsageLoad(jetstream(nc), cluster.prefix, machines, { everyMs: 250, payee: "guest" });
    const timeline: string[] = [];
    const mark = (what: string) => timeline.push(`${new Date().toISOString()} ${what}`);
    await sleep(downMs);

    // 1. The stream's leader dies; the next event acknowledged after it must reach the chain.
    const leader = (await jsm.streams.info(stream)).cluster?.leader;
    const leaderNode = cluster.nats.find((n) => n.name === `nats-${leader}`);
    expect(leaderNode, `stream leader ${leader}`).toBeDefined();
    const ackedBefore = load.acked.length;
    const killedAt = Date.now();
    await leaderNode?.kill();
    mark(`killed nats-${leader}`);
    let failoverMs = -1;
    const failedOver = await pollUntil(
      async () => {
        const after = load.acked.slice(ackedBefore, ackedBefore + 200);
        if (after.length === 0) return false;
        if ((await inChain(after)).size === 0) return false;
        failoverMs = Date.now() - killedAt;
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    expect(failedOver).toBe(true);
    mark(`first event after the kill applied (${failoverMs} ms)`);
    await sleep(downMs);
    await leaderNode?.start();
    mark(`nats-${leader} back`);

    // 2. A ledger dies; the other keeps ingesting from the same durable consumer.
    const countNow = async () => (await inChain(load.acked.slice())).size;
    await cluster.ledgers[0]?.kill();
    mark("killed ledger1");
    const atKill = await countNow();
    await sleep(downMs);
    expect(await countNow()).toBeGreaterThan(atKill);
    await cluster.ledgers[0]?.start();
    mark("ledger1 back");

    // 3. A coordinator dies; the other keeps the roster and heartbeats.
    await cluster.coordinators[0]?.kill();
    mark("killed coordinator1");
    await sleep(downMs);
    await cluster.coordinators[0]?.start();
    mark("coordinator1 back");

    // 4. PostgreSQL crashes and comes back (its own recovery, no checkpoint at stop).
    await pg.stop("immediate");
    mark("PostgreSQL crashed");
    await sleep(downMs / 2);
    await pg.start();
    mark("PostgreSQL back");
    await sleep(downMs * 2);

    await load.stop();
    watch.stop();
    beats.stop();
    mark(`load stopped: ${load.acked.length} acknowledged, ${load.lost.length} lost`);
    expect(load.lost).toEqual([]);
    expect(load.acked.length).toBeGreaterThan(500);

    let chained = new Map<string, number>();
    await pollUntil(
      async () => {
        chained = await inChain(load.acked);
        return chained.size === load.acked.length;
      },
      { timeoutMs: drainMs, intervalMs: 1_000 },
    );
    const missing = load.acked.filter((id) => !chained.has(id));
    const twice = [...chained].filter(([, n]) => n !== 1);
    const diagnostics = [
      ...timeline,
      `restarts: ${[...cluster.ledgers, ...cluster.coordinators].map((p) => `${p.name} ${p.restarts()}`).join(", ")}`,
      ...cluster.ledgers.map((l) => `${l.name}: ${l.proc().output().slice(-1500)}`),
    ].join("\n");
    expect(missing.slice(0, 10), diagnostics).toEqual([]);
    expect(twice, diagnostics).toEqual([]);
    const refused = await ledgerDb`select count(*)::int as n from rejections where event_id = any(${load.acked})`;
    const parked = await ledgerDb`select count(*)::int as n from parked`;
    expect([refused[0]?.n, parked[0]?.n], diagnostics).toEqual([0, 0]);
    expect(watch.notOnline, diagnostics).toEqual([]);

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
    // `potluck doctor --hub` sees the whole cluster healthy again (the killed server caught up)...
    const doctor = () =>
      run([process.execPath, join(repoRoot, "bin/potluck.mjs"), "doctor", "--hub", "--json"], {
        env: {
          ...process.env,
          POTLUCK_NATS_URL: cluster.natsUrl,
          POTLUCK_NATS_PREFIX: cluster.prefix,
          DATABASE_URL: pg.url(clusterDatabases.ledger),
        },
        timeoutMs: 120_000,
      });
    let report = "";
    const healthy = await pollUntil(
      async () => {
        const r = await doctor();
        report = r.stdout + r.stderr;
        return r.code === 0;
      },
      { timeoutMs: 120_000, intervalMs: 2_000 },
    );
    expect(healthy, report).toBe(true);
    const checks = (JSON.parse(report) as { checks: { part: string; status: string; detail: string }[] }).checks;
    expect(checks.filter((c) => c.part.startsWith("nats ") && c.status === "ok")).toHaveLength(3);
    expect(checks.find((c) => c.part.startsWith("stream "))?.detail).toMatch(/replicas 3 of 3 current/);
    expect(checks.find((c) => c.part.startsWith("consumer "))?.detail).toMatch(/^lag 0 /);
    expect(checks.find((c) => c.part.startsWith("database "))?.status).toBe("ok");
    // ...and names the server that is down, and the copy missing, once one is killed.
    const victim = cluster.nats[2];
    await victim?.kill();
    let sick = { code: 0, stdout: "", stderr: "" };
    let sickChecks: { part: string; status: string; detail: string }[] = [];
    // The leader notices a lost follower within seconds, not at once.
    await pollUntil(
      async () => {
        sick = await doctor();
        sickChecks = (JSON.parse(sick.stdout) as { checks: typeof sickChecks }).checks;
        return /replicas 2 of 3 current/.test(sickChecks.find((c) => c.part.startsWith("stream "))?.detail ?? "");
      },
      { timeoutMs: 60_000, intervalMs: 2_000 },
    );
    expect(sick.code, sick.stdout + sick.stderr).toBe(1);
    expect(sickChecks.find((c) => c.part.includes(victim?.host.underlayIp ?? "?"))?.status).toBe("fail");
    expect(sickChecks.find((c) => c.part.startsWith("stream "))?.detail).toMatch(/replicas 2 of 3 current/);
    await victim?.start();

    console.log(
      `cluster: ${load.acked.length} events through 4 faults, NATS leader death -> first event applied ${failoverMs} ms; ${beats.beats()} heartbeats; load ${await loadavg()}\n${diagnostics
        .split("\n")
        .slice(0, timeline.length + 1)
        .join("\n")}`,
    );
  }, 1_200_000);
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function loadavg(): Promise<string> {
  return (await run(["cat", "/proc/loadavg"])).stdout.trim();
}
