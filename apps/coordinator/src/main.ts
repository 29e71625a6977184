import { runService, serviceLogger } from "@potluck/service";
import { loadCoordinatorConfig } from "./config.js";
import { startCoordinatorService } from "./service.js";

const log = serviceLogger("coordinator");
await runService({
  name: "coordinator",
  log,
  loadConfig: () => loadCoordinatorConfig(),
  start: (config) => startCoordinatorService(config, { log }),
  listen: (config, service) => ({
    port: config.POTLUCK_COORDINATOR_PORT,
    hostname: config.POTLUCK_BIND,
    details: { database: service.database.kind, natsPrefix: config.POTLUCK_NATS_PREFIX },
  }),
});
