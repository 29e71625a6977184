export {
  CheckRegistry,
  defineCheck,
  DuplicateCheckError,
  type Check,
  type FailureSpec,
  type FixContext,
} from "./checks.js";
export { DetailKey, type Details } from "./detail.js";
export { Diagnostics, type CheckOptions, type DiagnosticsOptions } from "./diagnostics.js";
export {
  fileRosterSource,
  httpCoordinatorProbe,
  httpFirewallProbe,
  httpLocalProbe,
  httpPeerClient,
  httpRosterSource,
  httpSelfClient,
  peerRosterSource,
  type HttpPeerClientOptions,
} from "./http.js";
export type { LayerProbe, Learned, Outcome, Probes, Run, Step } from "./layer-probes/run.js";
export { DuplicateProbeError, layerProbes, ProbeTable, UnmatchedProbeError } from "./layer-probes/table.js";
export { buildRegistry, Failure } from "./layers.js";
export { DiagnosticsLimits, TimeToVisibleMs, type DiagnosticsBudget } from "./limits.js";
export * from "./probes.js";
export { renderReport } from "./render.js";
export { parseWgDump, wgTunnelReader } from "./wg.js";
export { natsPeerFirewallSource, type NatsPeerFirewall, type NatsPeerFirewallOptions } from "./nats-firewall.js";
export { isOnLink, tcpUnderlayProbe } from "./underlay.js";
export { firewallNotApplicable } from "./platform.js";
