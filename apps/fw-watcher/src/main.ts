import { serve } from "@hono/node-server";
import { drainOnSignal, loadConfigOrExit } from "@potluck/protocol";
import { pino } from "pino";
import { buildFwWatcherApp } from "./app.js";
import { parseInvocation, usage, UsageError, type Invocation } from "./cli.js";
import { loadFwWatcherConfig, type FwWatcherConfig } from "./config.js";
import { Firewall } from "./firewall.js";
import { createMetrics } from "./metrics.js";
import { ExitCode, runCheck, runInstall, runUninstall } from "./modes.js";
import { commandRunner } from "./nft/runner.js";
import { StatusPublisher } from "./publisher.js";
import { FwWatcher } from "./watcher.js";

const log = pino({ name: "fw-watcher" });
const invocation = parseOrExit(process.argv.slice(2));
if (invocation.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const config = loadConfigOrExit("potluck-fw-watcher", () => loadFwWatcherConfig());
const firewall = new Firewall(commandRunner(config.POTLUCK_FW_NFT.split(" ").filter(Boolean)), config.POTLUCK_INTERFACE);

if (invocation.mode === "watch") {
  watch(config);
} else {
  const exitCode = await runOneShot(invocation).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    log.error({ err: message, mode: invocation.mode }, `${invocation.mode} failed`);
    process.stderr.write(`potluck-fw-watcher: ${message}\n`);
    return ExitCode.error;
  });
  process.exitCode = exitCode;
}

function runOneShot({ mode, json }: Invocation): Promise<number> {
  if (mode === "install") return runInstall(firewall, log);
  if (mode === "uninstall") return runUninstall(firewall, log);
  return runCheck(firewall, json, (text) => process.stdout.write(text));
}

function watch(cfg: FwWatcherConfig): void {
  const metrics = createMetrics();
  const publisher = new StatusPublisher({ natsUrl: cfg.POTLUCK_NATS_URL, subjectRoot: cfg.POTLUCK_NATS_PREFIX, machine: cfg.POTLUCK_MACHINE, log });
  const watcher = new FwWatcher({
    firewall,
    machine: cfg.POTLUCK_MACHINE,
    log,
    intervalMs: cfg.POTLUCK_FW_WATCH_INTERVAL * 1000,
    onStatus: (status, changed) => {
      metrics.observe(status);
      publisher.offer(status, changed);
    },
  });
  const app = buildFwWatcherApp({ startedAt: Date.now(), status: () => watcher.status(), refresh: () => watcher.refresh(), reapply: (by) => watcher.reapply(by), registry: metrics.registry });
  const server = serve({ fetch: app.fetch, port: cfg.POTLUCK_FW_PORT, hostname: "127.0.0.1" /* the fw-watcher is loopback only */ }, (info) => {
    log.info({ port: info.port, interfaceName: cfg.POTLUCK_INTERFACE, intervalS: cfg.POTLUCK_FW_WATCH_INTERVAL }, "fw-watcher listening");
  });
  server.on("error", (error: Error) => {
    // A taken port is not transient: say so once and let systemd (Restart=always) try again later.
    log.fatal({ err: error.message, port: cfg.POTLUCK_FW_PORT }, "status server failed; exiting");
    process.exit(1);
  });
  log.info({ interfaceName: cfg.POTLUCK_INTERFACE, intervalS: cfg.POTLUCK_FW_WATCH_INTERVAL }, "watching the firewall");
  void publisher.start();
  watcher.start();
  drainOnSignal({
    log: (message) => log.info(message),
    close: async () => {
      await watcher.stop();
      // Stopping the service closes the hole it keeps open; this also undoes a tick that raced
      // systemd's ExecStop=--uninstall.
      await runUninstall(firewall, log).catch((error: unknown) => log.error({ err: error instanceof Error ? error.message : String(error) }, "removing accept rules on stop failed"));
      await publisher.close();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  });
}

function parseOrExit(argv: readonly string[]): Invocation {
  try {
    return parseInvocation(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`potluck-fw-watcher: ${error.message}\n${usage}\n`);
    process.exit(2);
  }
}
