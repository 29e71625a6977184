/** The household lab: hosts in network namespaces on one home LAN, joined by a WireGuard mesh. */
export { createLab } from "./create.js";
export { cleanupLeftovers, labLeftovers } from "./cleanup.js";
export { mtuBlackholeBytes } from "./faults.js";
export { labRootDir } from "./names.js";
export type { ExecOptions, ExecResult, Lab, LabFaults, LabHost, LabOptions, LabProcess, SpawnOptions, Undo } from "./types.js";
export { httpFrom, labHttpScript, serveHttp, type HttpResult } from "./http.js";
export { labRosterEntry } from "./roster.js";
export { pinArgv } from "./host.js";
export { delayMeshPath } from "./latency.js";
