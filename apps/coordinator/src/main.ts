import { drainOnSignal, loadConfigOrExit, messageOf, serveApp } from "@potluck/service";
import { pino } from "pino";
import { loadCoordinatorConfig } from "./config.js";
import { startCoordinatorService } from "./service.js";

const log = pino({ name: "coordinator" });
const config = loadConfigOrExit("potluck-coordinator", () => loadCoordinatorConfig());
try {
  const service = await startCoordinatorService(config, { log });
  const server = await serveApp(service.app, {
    port: config.POTLUCK_COORDINATOR_PORT,
    hostname: config.POTLUCK_BIND,
    log,
    name: "coordinator",
    details: { database: service.database.kind, natsPrefix: config.POTLUCK_NATS_PREFIX },
  });
  drainOnSignal({ log, close: [server, service] });
} catch (error) {
  process.stderr.write(`potluck-coordinator: ${messageOf(error)}\n`);
  process.exit(1);
}
