import { ConfigError, drainOnSignal, loadConfigOrExit, messageOf, serveApp } from "@potluck/service";
import { pino } from "pino";
import { loadSidecarConfig } from "./config.js";
import { startSidecarService } from "./service.js";

const log = pino({ name: "sidecar" });
const config = loadConfigOrExit("potluck-sidecar", () => loadSidecarConfig());
const exit = (code: number) => (error: unknown) => {
  process.stderr.write(`potluck-sidecar: ${messageOf(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : code);
};
const service = await startSidecarService(config, { log }).catch(exit(1));
const details = { machine: config.POTLUCK_MACHINE, owner: config.POTLUCK_OWNER, identityKey: service.identity.publicKey, models: service.models.map((m) => m.id) };
const served = await serveApp(service.app, { port: config.POTLUCK_PORT, hostname: config.POTLUCK_BIND, log, name: "sidecar", details }).catch(exit(1));
drainOnSignal({
  log,
  close: async () => {
    await served.close();
    await service.close();
  },
});
