import { readFileSync } from "node:fs";
import type { KeyObject } from "node:crypto";
import { join } from "node:path";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { connectNats, messageOf } from "@potluck/service";
import {
  HeartbeatTiming,
  redactNatsUrl,
  subjectsFor,
  type Heartbeat,
  type MeshState,
  type Roster,
} from "@potluck/protocol";
import { messageSigningParts, privateKeyFromPem, signRequest } from "@potluck/peer";
import { coordinatorClient } from "./client.js";
import type { Runner } from "./exec.js";
import { writeRoster } from "./files.js";
import { coordinatorUrlAfterJoin, hubUrlAfterJoin } from "./join.js";
import { chooseBackend } from "./backends/index.js";
import { emptyPeerPlan, executePlan, machineProbe } from "./backends/plan.js";
import { interfacePublicKey } from "./interface.js";
import { identityKeyFile, wireguardPublicKeyOf } from "./keys.js";
import type { PeerPlan } from "./peers.js";
import { RelayTracker } from "./relay.js";

export interface FollowOptions {
  state: MeshState;
  dataDir: string;
  privateKeyPath: string;
  run: Runner;
  signal: AbortSignal;
  log: (message: string) => void;
  /** When set: roster changes on NATS trigger an immediate sync, and heartbeats are published. */
  natsUrl?: string;
  natsPrefix?: string;
  /** Roster polls happen at least this often even with NATS (a lost message must not strand a peer). */
  pollIntervalMs?: number;
  /** The clock the direct-then-hub choice reads (tests inject one). */
  nowMs?: () => number;
}

/** The poll interval; the same order as the heartbeat interval, so a new machine is a peer within seconds. */
export const rosterPollIntervalMs = 5_000;
/** After failures the poll backs off up to this, so a coordinator outage is not hammered. */
const pollBackoffMsMax = 60_000;

/**
 * Keeps potluck0 in step with the roster until `signal` aborts: polls the roster (and, with
 * NATS, wakes on `<root>.roster.changed`), re-checks the interface, adds and removes peers, and
 * rewrites DATA_DIR/mesh/roster.json. With NATS it also sends this machine's heartbeat carrying
 * the key potluck0 really uses, so a key the coordinator does not know shows as stale.
 */
export async function followRoster(options: FollowOptions): Promise<void> {
  const { state, signal, log } = options;
  if (state.coordinatorKey === undefined)
    throw new Error(
      `no coordinator key is pinned for ${state.coordinatorUrl}: join again with a new token before following its roster`,
    );
  // After the join, the hub at its mesh address (join.ts): roster and NATS never cross the LAN.
  const client = coordinatorClient(coordinatorUrlAfterJoin(state), { coordinatorKey: state.coordinatorKey });
  const pollMs = options.pollIntervalMs ?? rosterPollIntervalMs;
  let wake: (() => void) | null = null;
  const nats =
    options.natsUrl === undefined
      ? null
      : startNats(
          options,
          hubUrlAfterJoin(state, options.natsUrl),
          () => wake?.(),
          log,
          () => device,
        );
  let version = -1;
  let roster: Roster | null = null;
  let failures = 0;
  let device = state.device ?? state.interfaceName;
  // One per agent: which peers ride on the hub is remembered between syncs (relay.ts).
  const relay = new RelayTracker({ self: state.name, nowMs: options.nowMs });
  signal.addEventListener("abort", () => wake?.(), { once: true });
  try {
    while (!signal.aborted) {
      try {
        // The version is a few bytes; the roster (hundreds of KB at 1,000 machines) only when it moved.
        const current = await client.rosterVersion();
        if (roster === null || current !== roster.version) roster = await client.roster();
        const plan = await followBackend(options, roster, (dev) => (device = dev), relay);
        for (const change of plan.paths ?? [])
          log(`${change.name}: ${change.to === "hub" ? "relayed via the hub" : "direct again"} (${change.reason})`);
        if (roster.version !== version || plan.set.length + plan.remove.length > 0) {
          writeRoster(options.dataDir, roster);
          log(
            `roster v${roster.version}: ${roster.machines.length - 1} peer(s); added/updated ${plan.set.map((p) => p.name).join(", ") || "none"}, removed ${plan.remove.length}`,
          );
          version = roster.version;
        }
        failures = 0;
      } catch (error) {
        failures++;
        log(`syncing the roster (attempt ${failures}): ${error instanceof Error ? error.message : String(error)}`);
      }
      const delayMs = Math.min(pollMs * 2 ** Math.min(failures, 8), failures === 0 ? pollMs : pollBackoffMsMax);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    await nats?.stop();
  }
}

function startNats(
  options: FollowOptions,
  natsUrl: string,
  onRosterChanged: () => void,
  log: (m: string) => void,
  device: () => string,
): { stop(): Promise<void> } {
  const subjects = subjectsFor(options.natsPrefix);
  let nc: NatsConnection | null = null;
  let stopped = false;
  let seq = 0;
  // Heartbeats are signed with the identity key join created (the coordinator drops unsigned
  // ones); without a readable key none are sent rather than unsigned ones.
  const identity = loadSigningKey(options.dataDir, options.state.name, log);
  const beat = setInterval(() => {
    if (nc === null || identity === undefined) return;
    void heartbeatKey(options, device()).then((key) => {
      if (key === null || nc === null || nc.isClosed()) return;
      const heartbeat: Heartbeat = {
        machine: options.state.name,
        wireguardPublicKey: key as never,
        seq: seq++,
        sentAt: new Date().toISOString(),
        status: "ok",
      };
      const subject = subjects.heartbeat(options.state.name);
      const payload = JSON.stringify(heartbeat);
      const signed = headers();
      for (const [name, value] of Object.entries(signRequest(messageSigningParts(subject, payload), identity)))
        signed.set(name, value);
      nc.publish(subject, payload, { headers: signed });
    });
  }, HeartbeatTiming.intervalMs);
  // Connect in the background: the mesh must come up even while NATS is unreachable. The kit's
  // connectNats says it is waiting and keeps trying until the agent stops.
  const stopping = new AbortController();
  const lines = (obj: object | string, msg?: string) =>
    log(msg ?? (typeof obj === "string" ? obj : JSON.stringify(obj)));
  void connectNats({
    url: natsUrl,
    name: `potluck-mesh-${options.state.name}`,
    log: { info: lines, warn: lines, error: lines },
    attemptsMax: Infinity,
    signal: stopping.signal,
  }).then(
    (conn) => {
      if (stopped) return void conn.close();
      nc = conn;
      conn.subscribe(subjects.rosterChanged, { callback: () => onRosterChanged() });
      log(`NATS connected (${redactNatsUrl(natsUrl)}); heartbeats every ${HeartbeatTiming.intervalMs / 1000} s`);
    },
    (error: unknown) => {
      if (!stopped) log(`NATS ${redactNatsUrl(natsUrl)}: ${messageOf(error)}; roster polling only`);
    },
  );
  return {
    async stop() {
      stopped = true;
      stopping.abort();
      clearInterval(beat);
      await nc?.drain().catch(() => undefined);
    },
  };
}

function loadSigningKey(
  dataDir: string,
  machine: string,
  log: (m: string) => void,
): { machine: string; privateKey: KeyObject } | undefined {
  const path = join(dataDir, identityKeyFile);
  try {
    return { machine, privateKey: privateKeyFromPem(readFileSync(path, "utf8")) };
  } catch (error) {
    log(
      `heartbeats off: cannot read the identity key ${path} (${error instanceof Error ? error.message : String(error)})`,
    );
    return undefined;
  }
}

/**
 * One roster sync of the tunnel, by the backend that brought it up: Linux and macOS re-plan
 * against what is there (a restarted wireguard-go, a new peer) and run only what differs; a
 * spoke's tunnel (windows, external) never changes with the roster, so nothing runs.
 */
async function followBackend(
  options: FollowOptions,
  roster: Roster,
  onDevice: (dev: string) => void,
  relay: RelayTracker,
): Promise<PeerPlan> {
  const backend = chooseBackend(options.state.backend);
  if (!backend.followsRoster) return emptyPeerPlan();
  const plan = await backend.plan({
    state: options.state,
    roster,
    dataDir: options.dataDir,
    privateKeyPath: options.privateKeyPath,
    privateKey: () => readFileSync(options.privateKeyPath, "utf8").trim(),
    probe: machineProbe(options.run),
    relay,
  });
  const vars = await executePlan(plan, { run: options.run, warn: options.log });
  const dev = plan.device ?? vars.UTUN;
  if (dev !== undefined) onDevice(dev);
  return plan.peers;
}

/**
 * The key heartbeats report: what the tunnel really uses, so a stale roster key shows. A tunnel
 * in the user's own app cannot be asked: the key the config was written with stands for it.
 */
async function heartbeatKey(options: FollowOptions, device: string): Promise<string | null> {
  if (options.state.backend !== "external") return interfacePublicKey(options.run, device);
  try {
    return wireguardPublicKeyOf(readFileSync(options.privateKeyPath, "utf8").trim());
  } catch {
    return null;
  }
}
