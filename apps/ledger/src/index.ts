/** The ledger's public surface: what tools, benches, `potluck up` and the lab may start or drive. */
export { buildLedgerApp, type LedgerApp, type LedgerDeps } from "./app.js";
export { loadLedgerConfig, LedgerConfigSchema, type LedgerConfig } from "./config.js";
export { startLedgerService, type LedgerOverrides, type LedgerService } from "./service.js";
export * from "./internal.js";
