/** The fw-watcher's public surface: what tools, the lab and tests may start or drive. */
export { buildFwWatcherApp, type FwWatcherApp, type FwWatcherDeps } from "./app.js";
export { FwWatcherConfigSchema, loadFwWatcherConfig, type FwWatcherConfig } from "./config.js";
export { Firewall } from "./firewall.js";
export { commandRunner } from "./nft/runner.js";
export { startFwWatcherService, type FwWatcherOverrides, type FwWatcherService } from "./service.js";
