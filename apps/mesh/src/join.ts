import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { Defaults, machineNameFromHost, type EnrollResponse, type MeshState, type Roster } from "@potluck/protocol";
import { chooseBackend } from "./backends/index.js";
import {
  executePlan,
  machineProbe,
  type MeshBackend,
  type Plan,
  type PlanEffects,
  type Probe,
} from "./backends/plan.js";
import { coordinatorClient, CoordinatorError } from "./client.js";
import { detectEndpointHost } from "./endpoint.js";
import type { Runner } from "./exec.js";
import { readMeshState, readSavedRoster, rosterFile, writeMeshState, writeRoster } from "./files.js";
import { ensureMachineKeys, type MachineKeys } from "./keys.js";

export interface JoinOptions {
  /** Absent: re-use this data dir's earlier enrollment (e.g. a service restarting after boot). */
  coordinatorUrl?: string;
  token?: string;
  dataDir: string;
  name?: string;
  /** Only checked: the join token fixes the owner, and a different one here refuses the join. */
  owner?: string;
  /** host:port other machines reach this one's WireGuard at; detected when absent. */
  endpoint?: string;
  listenPort?: number;
  /** Skip potluck0 (enroll and save only), e.g. where the user brings the tunnel up another way. */
  interface: boolean;
  run: Runner;
  /** The mesh backend by name (`--mesh`); absent: the saved one, else the one for `platform`. */
  mesh?: string;
  /** process.platform unless a test injects another. */
  platform?: NodeJS.Platform;
  /** Plan only: enroll (or re-use the enrollment) and return the plan, running and writing nothing of it. */
  dryRun?: boolean;
  /** external: where the wg-quick config goes. */
  configOut?: string;
  /** What planning looks at and executing does; this machine's unless a test injects them. */
  probe?: Probe;
  effects?: Omit<PlanEffects, "run">;
}

export interface JoinResult {
  state: MeshState;
  keys: MachineKeys;
  enrolled: boolean;
  peers: number;
  roster: Roster;
  /** What the backend ran (or, with dryRun, would run); absent with `interface: false`. */
  plan?: Plan;
}

/**
 * `potluck join`: keys (created once, 0600), enrollment (skipped if this data dir already joined
 * this coordinator under this name), the mesh state saved, then potluck0 up with every peer.
 */
export async function joinMesh(options: JoinOptions): Promise<JoinResult> {
  const keys = ensureMachineKeys(options.dataDir);
  const previous = readMeshState(options.dataDir);
  const coordinatorUrl = options.coordinatorUrl ?? previous?.coordinatorUrl;
  if (coordinatorUrl === undefined)
    throw new Error(`${options.dataDir} has not joined a mesh yet: give the coordinator URL and a join token`);
  let client = coordinatorClient(coordinatorUrl);
  const name = options.name ?? previous?.name ?? defaultMachineName();
  const backend = chooseBackend(options.mesh ?? previous?.backend, options.platform);
  let state: MeshState;
  let enrolled = false;
  if (previous !== undefined && previous.coordinatorUrl === client.baseUrl && previous.name === name) {
    state = previous;
    if (state.coordinatorKey === undefined)
      throw new Error(
        `${options.dataDir} joined ${client.baseUrl} before roster answers were signed, so no coordinator key is pinned; remove ${options.dataDir}/mesh and join again with a new token`,
      );
  } else if (options.token === undefined) {
    throw new Error(
      `enrolling ${name} with ${client.baseUrl} needs a join token (potluck token create on the coordinator's machine)`,
    );
  } else {
    const listenPort = options.listenPort ?? Defaults.wireguardPort;
    // A spoke is reached through the hub, which learns its address from its handshakes: it
    // announces no endpoint of its own unless told one.
    const endpoint =
      options.endpoint ??
      (backend.followsRoster ? await detectEndpoint(options.run, client.baseUrl, listenPort) : null);
    const response = await client.enroll({
      token: options.token,
      name,
      ...(options.owner === undefined ? {} : { owner: options.owner }),
      wireguardPublicKey: keys.wireguardPublicKey as never,
      identityPublicKey: keys.identityPublicKey as never,
      endpoints: endpoint === null ? [] : [endpoint],
    });
    state = stateFrom(client.baseUrl, response, listenPort);
    writeMeshState(options.dataDir, state);
    enrolled = true;
  }
  // From here on every roster answer must be signed with the key pinned at enrollment.
  client = coordinatorClient(state.coordinatorUrl, { coordinatorKey: state.coordinatorKey });
  const roster = await rosterOrSaved(client, options, !enrolled);
  let plan: Plan | undefined;
  if (options.interface) {
    plan = await backend.plan({
      state,
      roster,
      dataDir: options.dataDir,
      privateKeyPath: keys.wireguardPrivateKeyPath,
      privateKey: () => readFileSync(keys.wireguardPrivateKeyPath, "utf8").trim(),
      probe: options.probe ?? machineProbe(options.run),
      configOut: options.configOut,
    });
    if (options.dryRun !== true) state = await applyPlan(options, backend, plan, state);
  }
  // Only a machine whose tunnel is up can reach the hub at its mesh address.
  const hubOnMesh = options.interface && options.dryRun !== true ? hubMeshIpOf(roster) : undefined;
  if (hubOnMesh !== state.hubMeshIp) {
    state = { ...state };
    if (hubOnMesh === undefined) delete state.hubMeshIp;
    else state.hubMeshIp = hubOnMesh;
    if (options.dryRun !== true) writeMeshState(options.dataDir, state);
  }
  const peers = roster.machines.filter((m) => m.id !== state.machineId).length;
  return { state, keys, enrolled, peers, roster, ...(plan === undefined ? {} : { plan }) };
}

/**
 * The coordinator's roster, saved for the next start. A machine restarting on a saved enrollment
 * (a reboot) whose coordinator does not answer comes up with the roster it saved last: on the hub
 * the coordinator only starts once potluck0 carries the mesh address its NATS listens on, so
 * waiting for it here would keep both down for good. The agent then follows the roster as usual.
 * A refused or badly signed answer is never replaced by the saved one.
 */
async function rosterOrSaved(
  client: ReturnType<typeof coordinatorClient>,
  options: JoinOptions,
  restarting: boolean,
): Promise<Roster> {
  try {
    const roster = await client.roster();
    writeRoster(options.dataDir, roster);
    return roster;
  } catch (error) {
    // Only "unreachable" (no HTTP status): an answer the coordinator or the signature check refused stands.
    const unreachable = error instanceof CoordinatorError && error.status === null;
    const roster = restarting && unreachable ? readSavedRoster(options.dataDir) : undefined;
    if (roster === undefined || !unreachable) throw error;
    options.effects?.warn?.(
      `${error.message}: bringing potluck0 up with the roster saved at ${rosterFile(options.dataDir)}`,
    );
    return roster;
  }
}

/** Runs the plan and records the backend and the OS's device name (macOS's utunN) in the mesh state. */
async function applyPlan(options: JoinOptions, backend: MeshBackend, plan: Plan, state: MeshState): Promise<MeshState> {
  const vars = await executePlan(plan, { ...options.effects, run: options.run });
  const device = plan.device ?? vars.UTUN;
  const next: MeshState = { ...state, backend: backend.name };
  if (device !== undefined && device !== state.interfaceName) next.device = device;
  else delete next.device;
  if (JSON.stringify(next) !== JSON.stringify(state)) writeMeshState(options.dataDir, next);
  return next;
}

/** The potluck0 address of the machine the roster names as the hub, if any. */
function hubMeshIpOf(roster: Roster): MeshState["hubMeshIp"] {
  if (roster.hub === undefined || roster.hub === null) return undefined;
  return roster.machines.find((m) => m.name === roster.hub)?.meshIp;
}

/** Where a joined machine reaches the hub (libs/protocol hub-urls.ts), for the mesh agent and `potluck up`. */
export { coordinatorUrlAfterJoin, hubUrlAfterJoin, withHost } from "@potluck/protocol";

function stateFrom(
  coordinatorUrl: string,
  response: EnrollResponse & { coordinatorKey: string },
  listenPort: number,
): MeshState {
  return {
    coordinatorUrl,
    machineId: response.machine.id,
    name: response.machine.name,
    owner: response.machine.owner,
    meshIp: response.machine.meshIp,
    prefixLength: response.prefixLength,
    mtu: response.mtu,
    interfaceName: response.interfaceName,
    listenPort,
    endpoints: response.machine.endpoints,
    coordinatorKey: response.coordinatorKey as MeshState["coordinatorKey"],
  };
}

async function detectEndpoint(run: Runner, coordinatorUrl: string, listenPort: number): Promise<string | null> {
  const host = await detectEndpointHost(run, coordinatorUrl);
  return host === null ? null : `${host}:${listenPort}`;
}

/** POTLUCK_MACHINE, else the host name made into a roster label. */
export function defaultMachineName(): string {
  return machineNameFromHost(process.env.POTLUCK_MACHINE ?? hostname());
}
