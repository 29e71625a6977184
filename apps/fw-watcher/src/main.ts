import { serve } from "@hono/node-server";
import { drainOnSignal, loadConfigOrExit } from "@potluck/protocol";
import { pino } from "pino";
import { buildFwWatcherApp } from "./app.js";
import { loadFwWatcherConfig } from "./config.js";

const log = pino({ name: "fw-watcher" });
const config = loadConfigOrExit("potluck-fw-watcher", () => loadFwWatcherConfig());
const app = buildFwWatcherApp({ startedAt: Date.now() });

const server = serve({ fetch: app.fetch, port: config.POTLUCK_FW_PORT, hostname: "127.0.0.1" /* the fw-watcher is loopback only */ }, (info) => {
  log.info({ port: info.port }, "fw-watcher listening");
});
drainOnSignal({
  log: (message) => log.info(message),
  close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
});
