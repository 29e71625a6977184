// What tools (the CLI, benches, the lab) may use from the sidecar in-process. Apps never import this.
// Kept light on purpose: the CLI imports it at start-up, so nothing here loads the model runtime.
// Diagnostics surfaces, for the dashboard test and benches (Hono only; no model runtime).
export { diagnosticsRoutes, type DiagnosticsService } from "./routes/diagnostics.js";
export { dashboardRoutes, type DashboardDeps } from "./dashboard/routes.js";
export { modelsListRoutes, type CapabilitiesClient } from "./routes/models-list.js";
// The token-joining window, so the inference bench's bare-stream floor joins tokens the same way.
export { coalesceWindowMs } from "./routes/stream-body.js";
export { allowedCpus, planCpuPin, threadCpus } from "./cpu-pin.js";
export { PathConfirmLimits } from "./routing/confirmed.js";
// The whole sidecar in-process, as main.ts starts it (the model runtime loads only when it builds its own engine).
export { startSidecarService, type SidecarOverrides, type SidecarService } from "./service.js";
export { loadSidecarConfig, SidecarConfigSchema, type SidecarConfig } from "./config.js";
