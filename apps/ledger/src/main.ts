import { drainOnSignal, loadConfigOrExit, messageOf, serveApp } from "@potluck/service";
import { pino } from "pino";
import { loadLedgerConfig } from "./config.js";
import { startLedgerService } from "./service.js";

const log = pino({ name: "ledger" });
const config = loadConfigOrExit("potluck-ledger", () => loadLedgerConfig());
try {
  const service = await startLedgerService(config, {
    log,
    onIngestStall: (stalledMs) => {
      // Crash-only: the supervisor (systemd, potluck up) starts a fresh process; the batch is redelivered.
      log.fatal({ stalledMs }, "ingest: an append has not settled (database connection lost mid-transaction); exiting for a restart");
      process.exit(70);
    },
  });
  const server = await serveApp(service.app, { port: config.POTLUCK_LEDGER_PORT, hostname: config.POTLUCK_BIND, log, name: "ledger", details: { db: service.database.kind, key: service.ledger.publicKey } });
  drainOnSignal({ log, close: [server, service] });
} catch (error) {
  log.error({ err: messageOf(error) }, "ledger failed to start");
  process.exit(1);
}
