import { serve } from "@hono/node-server";
import { drainOnSignal, loadConfigOrExit } from "@potluck/protocol";
import { pino } from "pino";
import { buildLedgerApp } from "./app.js";
import { loadLedgerConfig } from "./config.js";

const log = pino({ name: "ledger" });
const config = loadConfigOrExit("potluck-ledger", () => loadLedgerConfig());
const app = buildLedgerApp({ startedAt: Date.now() });

const server = serve({ fetch: app.fetch, port: config.POTLUCK_LEDGER_PORT, hostname: config.POTLUCK_BIND }, (info) => {
  log.info({ port: info.port }, "ledger listening");
});
drainOnSignal({
  log: (message) => log.info(message),
  close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
});
