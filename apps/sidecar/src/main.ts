import { runService, serviceLogger } from "@potluck/service";
import { loadSidecarConfig } from "./config.js";
import { startSidecarService } from "./service.js";

const log = serviceLogger("sidecar");
await runService({
  name: "sidecar",
  log,
  loadConfig: () => loadSidecarConfig(),
  start: (config) => startSidecarService(config, { log }),
  listen: (config, service) => ({
    port: config.POTLUCK_PORT,
    hostname: config.POTLUCK_BIND,
    details: {
      machine: config.POTLUCK_MACHINE,
      owner: config.POTLUCK_OWNER,
      identityKey: service.identity.publicKey,
      models: service.models.map((m) => m.id),
    },
  }),
});
