/** What tools (CLI, benches, e2e tests) may drive in-process; other apps never import this. */
export { adminSecretPath, loadOrCreateAdminSecret } from "./admin.js";
export { buildCoordinatorApp, type CoordinatorApp, type CoordinatorDeps } from "./app.js";
export { ManualClock, systemClock, type Clock } from "./clock.js";
export { loadCoordinatorConfig, type CoordinatorConfig } from "./config.js";
export { openDatabase, type OpenedDatabase } from "./db/open.js";
export { enrollLockKey } from "./db/queries.js";
export { loadOrCreateCoordinatorKey, signingKeyPath, type CoordinatorKey } from "./signing-key.js";
export { startCoordinatorService, type CoordinatorService } from "./service.js";
export { CoordinatorState, type RosterEvents } from "./state.js";
