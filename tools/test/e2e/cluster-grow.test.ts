import { join } from "node:path";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsClusterConnectOptions, subjectsFor, UsageEvent } from "@potluck/protocol";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addNatsServer,
  type Cluster,
  clusterDatabases,
  clusterPorts,
  type ClusterProcess,
  createLab,
  enrollSimMachine,
  type Lab,
  pollUntil,
  type PrivatePostgres,
  run,
  type SimMachine,
  startClusterOnPostgres,
  startUsageLoad,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// The runbook's "Adding a NATS server" (docs: Beyond one household), step by step, on the lab's
// three-server cluster: a 4th and a 5th nats-server start with the same --cluster_name, their own
// JetStream store and --routes naming the existing servers only; every server then routes to
// every other and JetStream counts five peers, and a client given only a new server's URL
// publishes to and reads the usage stream. Then the ledgers are restarted one at a time with
// POTLUCK_USAGE_REPLICAS=5 and the five URLs: the stream goes to 5 copies, `potluck doctor --hub`
// says "replicas 5 of 5 current" with five servers up, and with two of the five servers killed
// (-9) usage events are still acknowledged and applied by a ledger.
const firstHosts = ["n1", "n2", "n3"] as const;
const grownHosts = ["n4", "n5"] as const;
/** Every node process starts through tsx on a loaded 2-core machine. */
const clusterUpMs = 600_000;
/** Routes, the JetStream meta group and new copies settle within seconds; the bound on a loaded box. */
const settleMs = 120_000;

let lab: Lab;
let pg: PrivatePostgres;
let cluster: Cluster;
let machine: SimMachine;
const added: ClusterProcess[] = [];
const connections: NatsConnection[] = [];
let ledgerDb: postgres.Sql;

beforeAll(async () => {
  lab = await createLab({ hosts: [], mesh: false, extraHosts: [...firstHosts, ...grownHosts], rootLink: true });
  ({ pg, cluster } = await startClusterOnPostgres(lab, { hosts: [...firstHosts] }));
  machine = await enrollSimMachine(cluster.coordinatorUrls[0] as string, cluster.adminSecret, "home-a", "home");
  await cluster.grant("home", 1_000_000, "grant-home");
  ledgerDb = postgres(pg.url(clusterDatabases.ledger), { max: 2, onnotice: () => undefined });
}, clusterUpMs);

afterAll(async () => {
  await ledgerDb?.end({ timeout: 5 }).catch(() => undefined);
  for (const nc of connections) await nc.close().catch(() => undefined);
  await Promise.all(added.map((s) => s.stop().catch(() => undefined)));
  await cluster?.stop().catch(() => undefined);
  await pg?.destroy().catch(() => undefined);
  await lab?.teardown();
}, 180_000);

const natsUrlOf = (host: string) => `nats://${lab.host(host).underlayIp}:${clusterPorts.client}`;
const allHosts = [...firstHosts, ...grownHosts];

/** A client held by the suite (closed in afterAll). */
async function client(url: string, onlyThisServer = false): Promise<NatsConnection> {
  const nc = await connect({
    ...natsClusterConnectOptions(url),
    timeout: 10_000,
    // Only this server: the cluster's gossip must not hand the client to an old server.
    ...(onlyThisServer ? { ignoreClusterUpdates: true, reconnect: false } : { maxReconnectAttempts: -1 }),
  });
  connections.push(nc);
  return nc;
}

/** nats-server's monitoring endpoint on a lab host, from the root namespace over the root link. */
async function monitor<T>(host: string, path: string): Promise<T | undefined> {
  const url = `http://${lab.host(host).underlayIp}:${clusterPorts.monitor}${path}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  return res?.ok === true ? ((await res.json()) as T) : undefined;
}

interface Routez {
  num_routes: number;
  routes?: { remote_id: string; ip: string }[];
}
interface Jsz {
  meta_cluster?: { name?: string; leader?: string; cluster_size?: number };
}

/** The hub's doctor, the real bin, with the hub's environment naming all five servers. */
async function doctorHub(): Promise<{
  code: number;
  out: string;
  checks: { part: string; status: string; detail: string }[];
}> {
  const r = await run([process.execPath, join(repoRoot, "bin/potluck.mjs"), "doctor", "--hub", "--json"], {
    env: {
      ...process.env,
      POTLUCK_NATS_URL: allHosts.map(natsUrlOf).join(","),
      POTLUCK_NATS_PREFIX: cluster.prefix,
      POTLUCK_LEDGER_CONSUMER: "ledger",
      DATABASE_URL: pg.url(clusterDatabases.ledger),
    },
    timeoutMs: 120_000,
  });
  let checks: { part: string; status: string; detail: string }[] = [];
  try {
    checks = (JSON.parse(r.stdout) as { checks: typeof checks }).checks;
  } catch {
    // Left empty: the assertion on `code` shows the output.
  }
  return { code: r.code, out: r.stdout + r.stderr, checks };
}

/** Which of `ids` the ledger's chain holds, and how many entries each has. */
async function inChain(ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await ledgerDb<{ event_id: string; n: string }[]>`
    select event_id, count(*) as n from entries where event_id = any(${ids as string[]}) group by event_id`;
  return new Map(rows.map((r) => [r.event_id, Number(r.n)]));
}

describe("growing the NATS cluster by the runbook", () => {
  it("adds a 4th and a 5th server that route to every other, join JetStream and serve the usage stream", async () => {
    added.push(await addNatsServer(lab, "n4", [...firstHosts]));
    added.push(await addNatsServer(lab, "n5", [...firstHosts, "n4"]));
    // Every server routes to the four others, the old ones included (they were never told of the
    // new ones: the cluster's gossip was), and n4 to n5, which named n4 itself.
    const routes = new Map<string, number>();
    const routed = await pollUntil(
      async () => {
        for (const h of allHosts) routes.set(h, (await monitor<Routez>(h, "/routez"))?.num_routes ?? -1);
        return [...routes.values()].every((n) => n === allHosts.length - 1);
      },
      { timeoutMs: settleMs, intervalMs: 1_000 },
    );
    expect(routed, JSON.stringify([...routes])).toBe(true);
    // JetStream's meta group now has five peers, as each new server sees it.
    let jsz: Jsz | undefined;
    for (const h of grownHosts) {
      const joined = await pollUntil(
        async () => {
          jsz = await monitor<Jsz>(h, "/jsz");
          return jsz?.meta_cluster?.cluster_size === allHosts.length && jsz.meta_cluster.leader !== undefined;
        },
        { timeoutMs: settleMs, intervalMs: 1_000 },
      );
      expect(joined, `${h}: ${JSON.stringify(jsz)}`).toBe(true);
    }

    // A client that knows only n5 publishes signed usage and reads it back, all through n5.
    const stream = subjectsFor(cluster.prefix).usageStream.name;
    const only5 = await client(natsUrlOf("n5"), true);
    expect(only5.info?.server_name).toBe("n5");
    expect(only5.info?.cluster).toBe("potluck-lab");
    const jsm5 = await jetstreamManager(only5, { timeout: 10_000 });
    expect((await jsm5.streams.info(stream)).config.num_replicas).toBe(3);
    const load = startUsageLoad(jetstream(only5, { timeout: 10_000 }), cluster.prefix, [machine], {
      everyMs: 200,
      payee: "guest",
    });
    await pollUntil(() => load.acked.length >= 5, { timeoutMs: 60_000, intervalMs: 200 });
    await load.stop();
    expect(load.lost).toEqual([]);
    expect(load.acked.length).toBeGreaterThanOrEqual(5);
    const last = await jsm5.streams.getMessage(stream, {
      last_by_subj: subjectsFor(cluster.prefix).usage(machine.owner),
    });
    expect(UsageEvent.parse(last?.json()).eventId).toBe(load.acked.at(-1));
    // The ledgers (still on the first three servers) apply what was published through n5.
    expect(
      await pollUntil(async () => (await inChain(load.acked)).size === load.acked.length, {
        timeoutMs: settleMs,
        intervalMs: 500,
      }),
    ).toBe(true);
  }, 300_000);

  it("moves the usage stream to 5 copies by restarting the ledgers, and survives two servers killed", async () => {
    expect(added, "the first test added n4 and n5").toHaveLength(2);
    const stream = subjectsFor(cluster.prefix).usageStream.name;
    const natsUrl = allHosts.map(natsUrlOf).join(",");
    const nc = await client(natsUrl);
    const jsm = await jetstreamManager(nc, { timeout: 10_000 });
    // The runbook: set it on the ledgers and restart them one at a time (each with all five URLs).
    for (const [i, ledger] of cluster.ledgers.entries()) {
      await ledger.stop();
      await ledger.start({ POTLUCK_NATS_URL: natsUrl, POTLUCK_USAGE_REPLICAS: "5" });
      if (i === 0) expect((await jsm.streams.info(stream)).config.num_replicas).toBe(5);
    }
    let doctor = await doctorHub();
    const healthy = async () => {
      doctor = await doctorHub();
      return doctor.code === 0 && /replicas 5 of 5 current/.test(streamDetail(doctor.checks));
    };
    expect(await pollUntil(healthy, { timeoutMs: settleMs, intervalMs: 2_000 }), doctor.out).toBe(true);
    const up = doctor.checks.filter((c) => c.part.startsWith("nats ") && c.status === "ok");
    expect(up.map((c) => c.part).sort()).toEqual(allHosts.map((h) => `nats ${natsUrlOf(h)}`).sort());
    const info = await jsm.streams.info(stream);
    expect([info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)].sort()).toEqual(
      [...allHosts].sort(),
    );

    // The ledger's durable consumer follows the stream to all five servers (nats-server moves a
    // durable's copies with its stream's): otherwise two deaths could take its quorum.
    let consumerPeers: string[] = [];
    const consumerOnAll = await pollUntil(
      async () => {
        const c = await jsm.consumers.info(stream, "ledger");
        consumerPeers = [c.cluster?.leader ?? "-", ...(c.cluster?.replicas ?? []).map((r) => r.name)].sort();
        return consumerPeers.join() === [...allHosts].sort().join();
      },
      { timeoutMs: settleMs, intervalMs: 1_000 },
    );
    expect(consumerOnAll, consumerPeers.join()).toBe(true);

    // Two of five die: the stream's leader and the ledger consumer's leader (or another copy).
    const victims = await pickVictims(jsm, stream);
    const servers = [...cluster.nats, ...added];
    const load = startUsageLoad(jetstream(nc, { timeout: 10_000 }), cluster.prefix, [machine], {
      everyMs: 250,
      payee: "guest",
    });
    await pollUntil(() => load.acked.length >= 4, { timeoutMs: 60_000, intervalMs: 200 });
    const ackedBefore = load.acked.length;
    const metaLeader = (await monitor<Jsz>("n5", "/jsz"))?.meta_cluster?.leader ?? "?";
    for (const v of victims) await servers.find((s) => s.name === `nats-${v}`)?.kill();
    const killedAt = Date.now();
    let failoverMs = -1;
    const appliedAfterKill = await pollUntil(
      async () => {
        const after = load.acked.slice(ackedBefore);
        if (after.length === 0 || (await inChain(after)).size === 0) return false;
        failoverMs = Date.now() - killedAt;
        return true;
      },
      { timeoutMs: settleMs, intervalMs: 200 },
    );
    const ledgerLogs = () => cluster.ledgers.map((l) => `${l.name}: ${l.proc().output().slice(-1500)}`).join("\n");
    expect(appliedAfterKill, `killed ${victims.join(", ")}\n${ledgerLogs()}`).toBe(true);
    await new Promise((r) => setTimeout(r, 5_000));
    await load.stop();
    expect(load.lost).toEqual([]);
    const afterKill = load.acked.slice(ackedBefore);
    expect(afterKill.length).toBeGreaterThan(0);
    let chained = new Map<string, number>();
    await pollUntil(
      async () => {
        chained = await inChain(load.acked);
        return chained.size === load.acked.length;
      },
      { timeoutMs: settleMs, intervalMs: 1_000 },
    );
    expect(
      load.acked.filter((id) => !chained.has(id)),
      ledgerLogs(),
    ).toEqual([]);
    expect([...chained].filter(([, n]) => n !== 1)).toEqual([]);
    const degraded = await doctorHub();
    const down = degraded.checks.filter((c) => c.part.startsWith("nats ") && c.status === "fail").map((c) => c.part);
    expect(down.sort()).toEqual(victims.map((v) => `nats ${natsUrlOf(v)}`).sort());

    // Both come back and catch up: the doctor sees five of five again.
    for (const v of victims) await servers.find((s) => s.name === `nats-${v}`)?.start();
    expect(await pollUntil(healthy, { timeoutMs: settleMs, intervalMs: 2_000 }), doctor.out).toBe(true);
    console.log(
      `cluster-grow: killed ${victims.join(" + ")} of 5 (JetStream meta leader ${metaLeader}); first event applied after the kill in ${failoverMs} ms; ${load.acked.length} events, ${afterKill.length} after the kill`,
    );
  }, 600_000);
});

function streamDetail(checks: { part: string; detail: string }[]): string {
  return checks.find((c) => c.part.startsWith("stream "))?.detail ?? "";
}

/** The stream's leader and the ledger consumer's leader; if they are one server, another of the consumer's copies. */
async function pickVictims(jsm: JetStreamManager, stream: string): Promise<[string, string]> {
  const streamLeader = (await jsm.streams.info(stream)).cluster?.leader;
  const consumer = await jsm.consumers.info(stream, "ledger");
  const consumerPeers = [consumer.cluster?.leader, ...(consumer.cluster?.replicas ?? []).map((r) => r.name)];
  const second = consumerPeers.find((p) => p !== undefined && p !== streamLeader);
  if (streamLeader === undefined || second === undefined)
    throw new Error(`no two servers to kill: stream leader ${streamLeader}, consumer on ${consumerPeers.join(",")}`);
  return [streamLeader, second];
}
