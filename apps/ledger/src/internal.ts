/** What tools (benches) may drive in-process; not a stable API. */
export { buildLedgerApp } from "./app.js";
export { openLedgerDb, type LedgerDb, type OpenedDb } from "./db/open.js";
export { ensureUsageConsumer, publishUsage, startIngest } from "./ingest/jetstream.js";
export { fromUsage, fromRequest } from "./ledger/events.js";
export { Ledger } from "./ledger/service.js";
export { balanceLeaves, takeSnapshot } from "./ledger/snapshot.js";
export { generateSigner } from "./proof/note.js";
