import { serve } from "@hono/node-server";
import { drainOnSignal, loadConfigOrExit } from "@potluck/protocol";
import { pino } from "pino";
import { buildCoordinatorApp } from "./app.js";
import { loadCoordinatorConfig } from "./config.js";

const log = pino({ name: "coordinator" });
const config = loadConfigOrExit("potluck-coordinator", () => loadCoordinatorConfig());
const app = buildCoordinatorApp({ startedAt: Date.now() });

const server = serve({ fetch: app.fetch, port: config.POTLUCK_COORDINATOR_PORT, hostname: config.POTLUCK_BIND }, (info) => {
  log.info({ port: info.port }, "coordinator listening");
});
drainOnSignal({
  log: (message) => log.info(message),
  close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
});
