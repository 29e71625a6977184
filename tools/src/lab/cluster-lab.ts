import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { natsClusterConnectOptions, Roster } from "@potluck/protocol";
import { repoRoot } from "../lib/repo.js";
import { clusterDatabases, startClusterOnPostgres } from "./cluster-db.js";
import { destroyPostgresAt } from "./postgres.js";
import { pollUntil } from "./run.js";
import { enrollSimMachine, startSimHeartbeats, type SimMachine } from "./sim-machines.js";
import { listStates, ownerAlive, type ClusterLabState } from "./state.js";
import type { Lab } from "./types.js";

/**
 * `potluck lab up --cluster`: a community on a NATS cluster in a lab that keeps running, built from
 * the parts cluster.test.ts uses — a private PostgreSQL on the lab's root link (two databases),
 * startCluster on three hosts, and two small households of simulated machines heartbeating
 * through the cluster for as long as the lab is up.
 */
export const clusterLabHosts = ["n1", "n2", "n3"] as const;

/** Two households: home with two machines, guest with one. */
export const clusterLabMachines = [
  { name: "home-a", owner: "home" },
  { name: "home-b", owner: "home" },
  { name: "guest-a", owner: "guest" },
] as const;

/** Every coordinator lists every machine online within a few heartbeats; allow for a loaded machine. */
const rosterOnlineMs = 120_000;
/** One roster read by `lab status`: a coordinator that is down must not hang the status. */
const rosterReadMs = 3_000;

/** What the owner holds (cli-support.ts LabAttachment): the cluster's state for the state file, and how to stop it. */
export interface ClusterLab {
  cluster: ClusterLabState;
  /** Stops the heartbeats, the cluster's processes and the private PostgreSQL (its directory too). */
  stop(): Promise<void>;
}

/**
 * Brings the community up on `lab` (created with rootLink and the clusterLabHosts). Checks
 * `signal` between steps, so a lab stopped while it starts stops at the next step; what was
 * started is stopped again before this rejects.
 */
export async function startClusterLab(lab: Lab, signal: AbortSignal): Promise<ClusterLab> {
  const rootIp = lab.rootIp;
  if (rootIp === null) throw new Error("a cluster lab needs the root link (LabOptions.rootLink)");
  // Undone last to first: heartbeats, the NATS connection, the cluster, PostgreSQL.
  const undo: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of undo.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    const { pg, cluster } = await startClusterOnPostgres(lab, { hosts: [...clusterLabHosts] });
    undo.push(() => pg.destroy());
    undo.push(() => cluster.stop());
    const databaseUrls = {
      coordinator: pg.url(clusterDatabases.coordinator, rootIp),
      ledger: pg.url(clusterDatabases.ledger, rootIp),
    };
    signal.throwIfAborted();
    // From the root namespace over the root link, reconnecting across the servers as a sidecar does.
    const nc = await connect({
      ...natsClusterConnectOptions(cluster.natsUrl),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    undo.push(() => nc.close());
    const machines: SimMachine[] = [];
    // Enrolled through both coordinators in turn: the roster is the database's, not a process's.
    for (const [i, m] of clusterLabMachines.entries())
      machines.push(await enrollSimMachine(cluster.coordinatorUrls[i % 2] ?? "", cluster.adminSecret, m.name, m.owner));
    const beats = startSimHeartbeats(nc, cluster.prefix, machines);
    undo.push(async () => beats.stop());
    const names = machines.map((m) => m.name);
    for (const url of cluster.coordinatorUrls) {
      const online = await pollUntil(() => allOnline(url, names), { timeoutMs: rosterOnlineMs, intervalMs: 500 });
      if (!online) throw new Error(`${url} did not list ${names.join(", ")} online within ${rosterOnlineMs / 1000} s`);
      signal.throwIfAborted();
    }
    const state: ClusterLabState = {
      natsUrl: cluster.natsUrl,
      prefix: cluster.prefix,
      coordinatorUrls: cluster.coordinatorUrls,
      ledgerUrls: cluster.ledgerUrls,
      databaseUrls,
      ledgerKeyFile: cluster.ledgerKeyFile,
      postgres: { port: pg.port, dataDir: pg.dataDir },
      machines: clusterLabMachines.map((m) => ({ ...m })),
    };
    return { cluster: state, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * What `lab up` prints and `lab status` shows of a cluster lab: its addresses, each coordinator's
 * view of the machines, and a command that checks the cluster's health from inside a host.
 */
export async function describeClusterLab(labId: string, cluster: ClusterLabState): Promise<string[]> {
  const rosters = await Promise.all(
    cluster.coordinatorUrls.map(async (url) => {
      const states = await rosterStates(url).catch((error: unknown) => String(error));
      const shown =
        typeof states === "string"
          ? `unreachable (${states})`
          : states.map((s) => `${s.name} (${s.owner}) ${s.state}`).join(", ") || "no machines";
      return `    roster at ${url}: ${shown}`;
    }),
  );
  return [
    `  cluster    NATS ${cluster.natsUrl}  prefix ${cluster.prefix}`,
    `    coordinators ${cluster.coordinatorUrls.join(" ")}  ledgers ${cluster.ledgerUrls.join(" ")}`,
    `    DATABASE_URL coordinators ${cluster.databaseUrls.coordinator}  ledgers ${cluster.databaseUrls.ledger}`,
    `    ledger key ${cluster.ledgerKeyFile}`,
    ...rosters,
    `    health: ${clusterHealthCommand(labId, cluster)}`,
  ];
}

/** `potluck doctor --hub` run inside the first cluster host with the hub's settings, ready to paste. */
export function clusterHealthCommand(labId: string, cluster: ClusterLabState): string {
  const potluck = `${process.execPath} ${join(repoRoot, "bin", "potluck.mjs")}`;
  return [
    `potluck lab exec ${clusterLabHosts[0]} --id ${labId} --`,
    `env POTLUCK_NATS_URL=${cluster.natsUrl} POTLUCK_NATS_PREFIX=${cluster.prefix}`,
    `DATABASE_URL=${cluster.databaseUrls.ledger} ${potluck} doctor --hub`,
  ].join(" ");
}

/**
 * Private PostgreSQL servers of cluster labs whose owner is gone (killed before it could stop
 * them): stopped and their directories removed. They run outside the lab's namespaces, so the
 * lab's own cleanup does not see them. Returns what it removed.
 */
export async function removeOrphanPostgres(): Promise<string[]> {
  const removed: string[] = [];
  for (const state of listStates()) {
    if (state.cluster === undefined || ownerAlive(state)) continue;
    const { dataDir } = state.cluster.postgres;
    // One that cannot be removed (a state file naming a path that is not one) must not stop the rest.
    const refused = await destroyPostgresAt(dataDir).then(
      () => "",
      (error: unknown) => ` (not removed: ${error instanceof Error ? error.message : String(error)})`,
    );
    removed.push(`PostgreSQL ${dataDir}${refused}`);
  }
  return removed;
}

async function allOnline(url: string, names: readonly string[]): Promise<boolean> {
  const states = await rosterStates(url);
  return names.every((n) => states.some((s) => s.name === n && s.state === "online"));
}

async function rosterStates(url: string): Promise<{ name: string; owner: string; state: string }[]> {
  const res = await fetch(`${url}/v1/roster`, { signal: AbortSignal.timeout(rosterReadMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return Roster.parse(await res.json()).machines.map((m) => ({ name: m.name, owner: m.owner, state: m.state }));
}
