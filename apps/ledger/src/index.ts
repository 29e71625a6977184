/** The ledger's public surface: what tools, benches, `potluck up` and the lab may start or drive. */
export { buildLedgerApp, type LedgerApp, type LedgerDeps } from "./app.js";
export { loadLedgerConfig, LedgerConfigSchema, type LedgerConfig } from "./config.js";
export { startLedgerService, type LedgerOverrides, type LedgerService } from "./service.js";
// Parts benches drive in-process (the ingest and append rates are component measurements).
export { openLedgerDb, type LedgerDb, type OpenedDb } from "./db/open.js";
export { ensureUsageConsumer, publishUsage, startIngest } from "./ingest/jetstream.js";
export { usageVerifier, type UsageVerifier } from "./ingest/verify-usage.js";
export { adminKeyFor, grantPath, readHubPrivateKey, signGrant } from "./auth/admin.js";
export { coordinatorDirectory, rosterDirectory, type MachineDirectory } from "./auth/roster.js";
export { fromUsage, fromRequest } from "./ledger/events.js";
export { Ledger } from "./ledger/service.js";
export { balanceLeaves, takeSnapshot } from "./ledger/snapshot.js";
export { generateSigner } from "@potluck/ledger-proof";
export { verifyLedgerDatabase } from "./cli-support.js";
