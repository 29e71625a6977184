import { serve } from "@hono/node-server";
import type { HttpBindings } from "@hono/node-server";
import { drainOnSignal, loadConfigOrExit } from "@potluck/protocol";
import { pino } from "pino";
import { buildSidecarApp } from "./app.js";
import { loadSidecarConfig } from "./config.js";

const log = pino({ name: "sidecar" });

const config = loadConfigOrExit("potluck-sidecar", () => loadSidecarConfig());

const app = buildSidecarApp({
  machine: config.POTLUCK_MACHINE,
  startedAt: Date.now(),
  isWarm: () => true,
  remoteAddress: (c) => (c.env as HttpBindings | undefined)?.incoming?.socket?.remoteAddress,
});

const server = serve({ fetch: app.fetch, port: config.POTLUCK_PORT, hostname: config.POTLUCK_BIND }, (info) => {
  log.info({ port: info.port, bind: config.POTLUCK_BIND, machine: config.POTLUCK_MACHINE }, "sidecar listening");
});
drainOnSignal({
  log: (message) => log.info(message),
  close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
});
