export { CheckRegistry, DuplicateCheckError, type Check, type FailureSpec, type FixContext } from "./checks.js";
export { Diagnostics, type CheckOptions, type DiagnosticsOptions } from "./diagnostics.js";
export { httpCoordinatorProbe, httpFirewallProbe, httpLocalProbe, httpPeerClient, httpRosterSource, type HttpPeerClientOptions, type RequestSigner } from "./http.js";
export type { Outcome, Probes } from "./layer-probes.js";
export { buildRegistry, Failure } from "./layers.js";
export { DiagnosticsLimits, TimeToVisibleMs, type DiagnosticsBudget } from "./limits.js";
export * from "./probes.js";
export { renderReport } from "./render.js";
export { parseWgDump, wgTunnelReader } from "./wg.js";
