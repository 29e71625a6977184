import { ConfigError, drainOnSignal, loadConfigOrExit, messageOf, serveApp } from "@potluck/service";
import { pino } from "pino";
import { loadSidecarConfig } from "./config.js";
import { startSidecarService } from "./service.js";

const log = pino({ name: "sidecar" });
const config = loadConfigOrExit("potluck-sidecar", () => loadSidecarConfig());
try {
  const service = await startSidecarService(config, { log });
  const server = await serveApp(service.app, {
    port: config.POTLUCK_PORT,
    hostname: config.POTLUCK_BIND,
    log,
    name: "sidecar",
    details: { machine: config.POTLUCK_MACHINE, owner: config.POTLUCK_OWNER, identityKey: service.identity.publicKey, models: service.models.map((m) => m.id) },
  });
  drainOnSignal({ log, close: [server, service] });
} catch (error) {
  // A bad POTLUCK_MODELS entry is found while starting; it exits like any other bad setting.
  process.stderr.write(`potluck-sidecar: ${messageOf(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
