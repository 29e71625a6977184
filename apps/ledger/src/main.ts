import { runService, serviceLogger } from "@potluck/service";
import { loadLedgerConfig } from "./config.js";
import { startLedgerService } from "./service.js";

const log = serviceLogger("ledger");
await runService({
  name: "ledger",
  log,
  loadConfig: () => loadLedgerConfig(),
  start: (config) =>
    startLedgerService(config, {
      log,
      onIngestStall: (stalledMs) => {
        // Crash-only: the supervisor (systemd, potluck up) starts a fresh process; the batch is redelivered.
        log.fatal(
          { stalledMs },
          "ingest: an append has not settled (database connection lost mid-transaction); exiting for a restart",
        );
        process.exit(70);
      },
    }),
  listen: (config, service) => ({
    port: config.POTLUCK_LEDGER_PORT,
    hostname: config.POTLUCK_BIND,
    details: { db: service.database.kind, key: service.ledger.publicKey },
  }),
});
