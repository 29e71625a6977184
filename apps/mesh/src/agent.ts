import { runCommand, type Runner } from "./exec.js";
import { readMeshState } from "./files.js";
import { followRoster } from "./follow.js";
import { joinMesh, type JoinResult } from "./join.js";

export interface MeshAgentOptions {
  dataDir: string;
  /** With NATS: instant roster changes and this machine's heartbeats; without it, polling only. */
  natsUrl?: string;
  natsPrefix?: string;
  log: (message: string) => void;
  /** Aborting it stops following (SIGTERM from systemd, Ctrl-C). */
  signal: AbortSignal;
  run?: Runner;
}

/**
 * What the `potluck-mesh` agent runs on every machine: potluck0 up again from the data dir's saved
 * enrollment (a reboot, a restart by systemd), then kept in step with the roster until `signal`
 * aborts. Enrolling the first time is `potluck join URL TOKEN`; the token is never needed here.
 */
export async function runMeshAgent(options: MeshAgentOptions): Promise<void> {
  const run = options.run ?? runCommand;
  // Checked first, so a machine that never joined gets no keys created by a restarting agent.
  if (readMeshState(options.dataDir) === undefined)
    throw new Error(
      `${options.dataDir} has not joined a mesh yet: run potluck join COORDINATOR_URL TOKEN (as root, with this data dir) first`,
    );
  const joined = await joinMesh({ dataDir: options.dataDir, interface: true, run, effects: { warn: options.log } });
  const { state } = joined;
  options.log(
    `up as ${state.name} (${state.meshIp}/${state.prefixLength} on ${state.interfaceName}) with ${joined.peers} peer(s)`,
  );
  await followJoined(joined, options);
}

/** Follows the roster for a machine that has just joined (`potluck join --follow` and the agent). */
export function followJoined(joined: JoinResult, options: MeshAgentOptions): Promise<void> {
  return followRoster({
    state: joined.state,
    dataDir: options.dataDir,
    privateKeyPath: joined.keys.wireguardPrivateKeyPath,
    run: options.run ?? runCommand,
    signal: options.signal,
    log: options.log,
    natsUrl: options.natsUrl,
    natsPrefix: options.natsPrefix,
  });
}
