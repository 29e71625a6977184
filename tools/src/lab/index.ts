/** The household lab: hosts in network namespaces on one home LAN, joined by a WireGuard mesh. */
export { createLab } from "./create.js";
export { cleanupLeftovers, labLeftovers } from "./cleanup.js";
export { mtuBlackholeBytes } from "./faults.js";
export { labRootDir } from "./names.js";
export type {
  ExecOptions,
  ExecResult,
  Lab,
  LabFaults,
  LabHost,
  LabOptions,
  LabProcess,
  SpawnOptions,
  Undo,
} from "./types.js";
export { httpFrom, labHttpScript, serveHttp, type HttpResult } from "./http.js";
export { labRosterEntry } from "./roster.js";
export { pinArgv } from "./host.js";
export { delayMeshPath } from "./latency.js";
// What the CLI, the demo, benches and tests use; every other module here is the lab's own
// (eslint.config.mjs refuses imports of them from outside tools/src/lab).
export { describeLabs, hostCommand, liveCliLabs, ownCliLab } from "./cli-support.js";
export { labNamespaces, labPids } from "./cleanup.js";
export { hubPorts, hubStartMs, startHub, waitForOutput, type Hub, type StartHubOptions } from "./hub.js";
export { startHubSidecar, type SidecarHub } from "./hub-sidecar.js";
export { clusterHub, type ClusterHub } from "./cluster-hub.js";
export { probeNats } from "./nats-probe.js";
export {
  type Identity,
  labRosterFile,
  labSidecarDataDir,
  rosterSidecarPort,
  seedRosterHousehold,
  type SeededHousehold,
  sidecarReadyMs,
  startRosterSidecar,
  waitSidecarHealthy,
} from "./roster-sidecar.js";
export { checkId, labDir, labIdEnv, newLabId } from "./names.js";
export { pollUntil, run } from "./run.js";
export { listStates, ownerAlive, readState, type ClusterLabState, type LabState } from "./state.js";
export {
  addNatsServer,
  clusterPorts,
  clusterReplicas,
  startCluster,
  startNatsCluster,
  waitJetStream,
  type Cluster,
  type ClusterOptions,
  type ClusterProcess,
} from "./cluster.js";
export { startPrivatePostgres, type PrivatePostgres } from "./postgres.js";
export { clusterDatabases, startClusterOnPostgres, type ClusterOnPostgres } from "./cluster-db.js";
export {
  clusterHealthCommand,
  clusterLabHosts,
  clusterLabMachines,
  describeClusterLab,
  removeOrphanPostgres,
  startClusterLab,
  type ClusterLab,
} from "./cluster-lab.js";
export {
  createJoinToken,
  enrollSimMachine,
  startSimHeartbeats,
  startUsageLoad,
  type SimMachine,
  type UsageLoad,
} from "./sim-machines.js";
export { seedSimMachines } from "./sim-seed.js";
