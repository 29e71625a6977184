import { createPublicKey, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { grantPath, readHubPrivateKey, signGrant } from "@potluck/ledger";
import { publicKeyToBase64 } from "@potluck/peer";
import { natsClusterConnectOptions } from "@potluck/protocol";
import { serviceEntry } from "../lib/repo.js";
import { waitForOutput } from "./hub.js";
import { killGroup, pollUntil } from "./run.js";
import type { Lab, LabHost, LabProcess } from "./types.js";

/**
 * Beyond one household, in the lab: three nats-server processes clustered over the home LAN
 * (JetStream, routes between three lab hosts), the usage stream replicated on all three, and
 * coordinators and ledgers side by side against one PostgreSQL. Every process can be killed for
 * real (SIGKILL to its process group) and brought back; an exit nobody asked for is restarted
 * the way systemd's Restart=always would, and counted.
 */
export const clusterPorts = { client: 4222, routes: 6222, monitor: 8222, coordinator: 8320, ledger: 8330 } as const;

/** Copies of the usage stream in the lab: one per server, so any one may die. */
export const clusterReplicas = 3;

/** A supervisor's pause before restarting a process that exited on its own (systemd's RestartSec). */
const restartDelayMs = 1_000;
/** Unrequested restarts of one process before the supervisor gives up on it (a crash loop). */
const restartsMax = 20;

export interface ClusterProcess {
  name: string;
  host: LabHost;
  /** The current process (a new one after every start). */
  proc(): LabProcess;
  /** Restarts the supervisor made because the process exited without being asked to. */
  restarts(): number;
  /** SIGKILL to the whole process group, as `kill -9` would; it stays down until start(). */
  kill(): Promise<void>;
  /** SIGTERM with the lab's grace; stays down until start(). */
  stop(): Promise<void>;
  /**
   * Starts it (again) and waits for its ready line. `env` is added to a service's environment from
   * this start on (a setting changed for a restart, as the runbook does); nats-server takes none.
   */
  start(env?: NodeJS.ProcessEnv): Promise<void>;
}

export interface Cluster {
  prefix: string;
  /** Every NATS server, comma-separated, as POTLUCK_NATS_URL takes them. */
  natsUrl: string;
  nats: ClusterProcess[];
  coordinators: ClusterProcess[];
  ledgers: ClusterProcess[];
  /** `http://ip:port` of each coordinator and ledger, in the same order. */
  coordinatorUrls: string[];
  ledgerUrls: string[];
  adminSecret: string;
  ledgerWriteToken: string;
  /** The ledger's signing key file (every ledger signs with the same log key). */
  ledgerKeyFile: string;
  /** A grant signed with the hub's key, as `potluck ledger grant` makes it, posted to the first ledger. */
  grant(account: string, delta: number, eventId: string): Promise<void>;
  /** Stops every process (the lab's teardown would too). */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Three lab hosts for the NATS servers; coordinators and ledgers run on the first two and last two. */
  hosts: [string, string, string];
  /** PostgreSQL URLs as the lab hosts reach them, one database each. */
  coordinatorDatabaseUrl: string;
  ledgerDatabaseUrl: string;
  /** Added to every coordinator's and ledger's environment (e.g. POTLUCK_LEDGER_ACK_WAIT). */
  serviceEnv?: NodeJS.ProcessEnv;
  replicas?: number;
}

export async function startCluster(lab: Lab, options: ClusterOptions): Promise<Cluster> {
  const hosts = options.hosts.map((name) => lab.host(name));
  const prefix = `c${randomBytes(4).toString("hex")}`;
  const { natsUrl, nats } = await startNatsCluster(lab, options.hosts);
  const adminSecret = randomBytes(24).toString("hex");
  const ledgerWriteToken = randomBytes(24).toString("hex");
  const shared = join(hosts[0]?.runDir ?? "", "..", "cluster-shared");
  mkdirSync(shared, { recursive: true, mode: 0o700 });
  const ledgerKeyFile = join(shared, "ledger.key");
  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
    ...process.env,
    POTLUCK_NATS_URL: natsUrl,
    POTLUCK_NATS_PREFIX: prefix,
    POTLUCK_USAGE_REPLICAS: String(options.replicas ?? clusterReplicas),
    POTLUCK_OLLAMA_PORT: "0",
    ...options.serviceEnv,
    ...extra,
  });
  const coordinatorHosts = [hosts[0], hosts[1]] as LabHost[];
  const coordinatorUrls = coordinatorHosts.map((h) => `http://${h.underlayIp}:${clusterPorts.coordinator}`);
  // Both coordinators share the data dir that holds the coordinator's signing key: one hub, two processes.
  const coordinators = coordinatorHosts.map((h, i) =>
    service(h, `coordinator${i + 1}`, serviceEntry.coordinator, /coordinator listening/, () =>
      env({
        DATABASE_URL: options.coordinatorDatabaseUrl,
        POTLUCK_DATA_DIR: join(shared, "coordinator"),
        POTLUCK_COORDINATOR_ADMIN_SECRET: adminSecret,
        POTLUCK_COORDINATOR_PORT: String(clusterPorts.coordinator),
      }),
    ),
  );
  for (const c of coordinators) await c.start();
  // The hub's key now exists: every ledger takes grants signed with it, and only those.
  const hubDataDir = join(shared, "coordinator");
  const hubKey = publicKeyToBase64(createPublicKey(readHubPrivateKey(hubDataDir)));
  const ledgerHosts = [hosts[1], hosts[2]] as LabHost[];
  const ledgerUrls = ledgerHosts.map((h) => `http://${h.underlayIp}:${clusterPorts.ledger}`);
  const ledgers = ledgerHosts.map((h, i) =>
    service(h, `ledger${i + 1}`, serviceEntry.ledger, /ledger listening/, () =>
      env({
        DATABASE_URL: options.ledgerDatabaseUrl,
        POTLUCK_DATA_DIR: join(h.runDir, "ledger"),
        POTLUCK_LEDGER_KEY_FILE: ledgerKeyFile,
        POTLUCK_LEDGER_PORT: String(clusterPorts.ledger),
        POTLUCK_LEDGER_WRITE_TOKEN: ledgerWriteToken,
        // Each ledger lists both coordinators, the one on its own host's side of the pair first.
        POTLUCK_COORDINATOR_URL: [coordinatorUrls[i], ...coordinatorUrls.filter((_, k) => k !== i)].join(","),
        POTLUCK_COORDINATOR_KEY: hubKey,
      }),
    ),
  );
  // One at a time: the first creates the shared key file the second then reads.
  for (const l of ledgers) await l.start();
  return {
    prefix,
    natsUrl,
    nats,
    coordinators,
    ledgers,
    coordinatorUrls,
    ledgerUrls,
    adminSecret,
    ledgerWriteToken,
    ledgerKeyFile,
    async grant(account, delta, eventId) {
      const body = JSON.stringify({ kind: "adjust", eventId, account, delta, reason: "lab grant" });
      const res = await fetch(`${ledgerUrls[0]}${grantPath}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...signGrant(body, readHubPrivateKey(hubDataDir)) },
        body,
      });
      if (!res.ok) throw new Error(`grant of ${delta} to ${account}: HTTP ${res.status} ${await res.text()}`);
    },
    async stop() {
      await Promise.all([...ledgers, ...coordinators].map((p) => p.stop()));
      await Promise.all(nats.map((p) => p.stop()));
    },
  };
}

/** Three (or more) clustered nats-servers, one per host, JetStream ready through them when this resolves. */
export async function startNatsCluster(
  lab: Lab,
  hostNames: readonly string[],
): Promise<{ natsUrl: string; nats: ClusterProcess[] }> {
  const hosts = hostNames.map((name) => lab.host(name));
  const natsUrl = hosts.map((h) => `nats://${h.underlayIp}:${clusterPorts.client}`).join(",");
  const nats = hosts.map((h) => natsServer(h, hosts));
  // Each server needs a route up before JetStream elects a meta leader: start all, then wait.
  await Promise.all(nats.map((n) => n.start()));
  await waitJetStream(natsUrl);
  return { natsUrl, nats };
}

/**
 * One more server joining a running cluster, as the runbook says to add one: the same cluster
 * name, its own JetStream store, and routes naming the existing servers only (the cluster's
 * gossip tells the others about it). Resolves when it is ready; joining JetStream's meta group
 * takes a little longer, which the caller checks.
 */
export async function addNatsServer(
  lab: Lab,
  hostName: string,
  existingHostNames: readonly string[],
): Promise<ClusterProcess> {
  const server = natsServer(
    lab.host(hostName),
    existingHostNames.map((name) => lab.host(name)),
  );
  await server.start();
  return server;
}

/** "Server is ready" comes before the servers have elected a JetStream meta leader; streams need one. */
const jetStreamReadyMs = 120_000;

/** Until JetStream answers through the cluster (from this, the root namespace, over the root link). */
export async function waitJetStream(natsUrl: string, timeoutMs = jetStreamReadyMs): Promise<void> {
  const nc = await connect({ ...natsClusterConnectOptions(natsUrl), timeout: 5_000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000, checkAPI: false });
    let last = "";
    const ok = await pollUntil(
      () =>
        jsm.getAccountInfo().then(
          () => true,
          (error: unknown) => ((last = String(error)), false),
        ),
      { timeoutMs, intervalMs: 500 },
    );
    if (!ok) throw new Error(`JetStream on ${natsUrl} not ready within ${timeoutMs / 1000} s: ${last}`);
  } finally {
    await nc.close();
  }
}

/** One cluster member: client port, route port, JetStream in its own store dir, routes to `routeHosts`. */
function natsServer(host: LabHost, routeHosts: readonly LabHost[]): ClusterProcess {
  const routes = routeHosts.map((h) => `nats://${h.underlayIp}:${clusterPorts.routes}`).join(",");
  const argv = [
    "/usr/sbin/nats-server",
    "-n",
    host.name,
    "-js",
    "-sd",
    join(host.runDir, "nats"),
    "-a",
    "0.0.0.0",
    "-p",
    String(clusterPorts.client),
    // nats-server's monitoring endpoint (/routez, /jsz): what a test reads to see a server joined.
    "-m",
    String(clusterPorts.monitor),
    "--cluster_name",
    "potluck-lab",
    "--cluster",
    `nats://0.0.0.0:${clusterPorts.routes}`,
    "--routes",
    routes,
  ];
  return supervised(host, `nats-${host.name}`, () => host.spawn(`nats-${host.name}`, argv), /Server is ready/);
}

function service(
  host: LabHost,
  name: string,
  entry: string,
  ready: RegExp,
  env: () => NodeJS.ProcessEnv,
): ClusterProcess {
  return supervised(
    host,
    name,
    (extra) => host.spawn(name, [process.execPath, "--import", "tsx", entry], { env: { ...env(), ...extra } }),
    ready,
  );
}

/** A process the lab keeps running: restarted after an exit it did not ask for, up to restartsMax. */
function supervised(
  host: LabHost,
  name: string,
  spawnIt: (extraEnv: NodeJS.ProcessEnv) => LabProcess,
  ready: RegExp,
): ClusterProcess {
  let current: LabProcess | undefined;
  let wanted = false;
  let restarts = 0;
  let extraEnv: NodeJS.ProcessEnv = {};
  const launch = (): LabProcess => {
    const proc = spawnIt(extraEnv);
    current = proc;
    void proc.exited.then(() => {
      if (!wanted || current !== proc || restarts >= restartsMax) return;
      restarts += 1;
      setTimeout(() => {
        if (wanted && current === proc) launch();
      }, restartDelayMs);
    });
    return proc;
  };
  const down = async (signal: "SIGKILL" | "stop") => {
    wanted = false;
    const proc = current;
    if (proc === undefined) return;
    if (signal === "SIGKILL") {
      killGroup(proc.pid, "SIGKILL");
      await proc.exited;
    } else await proc.stop();
  };
  return {
    name,
    host,
    proc: () => {
      if (current === undefined) throw new Error(`${name} was never started`);
      return current;
    },
    restarts: () => restarts,
    kill: () => down("SIGKILL"),
    stop: () => down("stop"),
    async start(env) {
      if (env !== undefined) extraEnv = { ...extraEnv, ...env };
      wanted = true;
      await waitForOutput(launch(), ready, `starting ${name} on ${host.name}`);
    },
  };
}
