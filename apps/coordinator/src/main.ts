import { serve } from "@hono/node-server";
import { drainOnSignal, loadConfigOrExit } from "@potluck/protocol";
import { pino } from "pino";
import { loadCoordinatorConfig } from "./config.js";
import { startCoordinatorService } from "./service.js";

const log = pino({ name: "coordinator" });
const config = loadConfigOrExit("potluck-coordinator", () => loadCoordinatorConfig());
const service = await startCoordinatorService(config, { log }).catch((error: unknown) => {
  process.stderr.write(`potluck-coordinator: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

const server = serve({ fetch: service.app.fetch, port: config.POTLUCK_COORDINATOR_PORT, hostname: config.POTLUCK_BIND }, (info) => {
  log.info({ port: info.port, database: service.database.kind, natsPrefix: config.POTLUCK_NATS_PREFIX }, "coordinator listening");
});
drainOnSignal({
  log: (message) => log.info(message),
  close: async () => {
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    await service.close();
  },
});
