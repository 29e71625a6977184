/** The mesh agent, the machine side of the mesh: keys, enrollment, potluck0 with wireguard-go, roster following. */
export {
  backendNames,
  chooseBackend,
  defaultConfigOut,
  executePlan,
  formatPlan,
  hubOf,
  isBackendName,
  machineProbe,
  spokeConfig,
  type BackendName,
  type MeshBackend,
  type Plan,
  type PlanEffects,
  type PlanInput,
  type Probe,
  type Step,
  withoutKey,
} from "./backends/index.js";
export { followJoined, runMeshAgent, type MeshAgentOptions } from "./agent.js";
export { coordinatorClient, CoordinatorError, type CoordinatorClient } from "./client.js";
export { loadMeshConfig, type MeshConfig } from "./config.js";
export { runCommand, type Runner, type RunResult } from "./exec.js";
export { meshDir, readMeshState, rosterFile } from "./files.js";
export { followRoster, rosterPollIntervalMs } from "./follow.js";
export { bringUpInterface, interfacePublicKey, latestHandshakes, syncPeers } from "./interface.js";
export {
  coordinatorUrlAfterJoin,
  defaultMachineName,
  joinMesh,
  hubUrlAfterJoin,
  type JoinOptions,
  type JoinResult,
  withHost,
} from "./join.js";
export { ensureMachineKeys, generateWireguardPrivateKey, wireguardPublicKeyOf, type MachineKeys } from "./keys.js";
export { parseWgDump, planPeers, type PeerPlan, type WgPeerState } from "./peers.js";
export {
  directRetryMs,
  directSilentMs,
  firstHandshakeWaitMs,
  relayCandidates,
  RelayTracker,
  type PathChange,
  type PathMode,
  type RelayDecision,
} from "./relay.js";
