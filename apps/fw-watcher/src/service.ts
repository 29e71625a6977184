import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, messageOf, silentLogger, type Logger } from "@potluck/service";
import { buildFwWatcherApp } from "./app.js";
import type { FwWatcherConfig } from "./config.js";
import { Firewall } from "./firewall.js";
import { createMetrics } from "./metrics.js";
import { runUninstall } from "./modes.js";
import { commandRunner } from "./nft/runner.js";
import { StatusPublisher } from "./publisher.js";
import { FwWatcher } from "./watcher.js";

export interface FwWatcherOverrides {
  log?: Logger;
  /** A connection the caller owns (and closes); without it the service opens its own in the background. */
  nats?: NatsConnection;
  /** nftables access; without it, the POTLUCK_FW_NFT command. */
  firewall?: Firewall;
}

export interface FwWatcherService {
  app: ReturnType<typeof buildFwWatcherApp>;
  watcher: FwWatcher;
  firewall: Firewall;
  /** Stops watching, removes its rules (stopping the service closes the hole it keeps open), stops publishing. */
  close(): Promise<void>;
}

/**
 * Watch mode, as one function so tests and the lab run the real thing. NATS is optional here:
 * the watch loop starts at once and the status goes out whenever a connection exists, so a
 * broker that is down never keeps the firewall from being repaired.
 */
export function startFwWatcherService(config: FwWatcherConfig, overrides: FwWatcherOverrides = {}): FwWatcherService {
  const { log = silentLogger } = overrides;
  const firewall =
    overrides.firewall ??
    new Firewall(commandRunner(config.POTLUCK_FW_NFT.split(" ").filter(Boolean)), config.POTLUCK_INTERFACE);
  const metrics = createMetrics();
  const publisher = new StatusPublisher({
    subjectRoot: config.POTLUCK_NATS_PREFIX,
    machine: config.POTLUCK_MACHINE,
    log,
  });
  const watcher = new FwWatcher({
    firewall,
    machine: config.POTLUCK_MACHINE,
    log,
    intervalMs: config.POTLUCK_FW_WATCH_INTERVAL * 1000,
    onStatus: (status, changed) => {
      metrics.observe(status);
      publisher.offer(status, changed);
    },
  });
  const app = buildFwWatcherApp({
    startedAt: Date.now(),
    status: () => watcher.status(),
    refresh: () => watcher.refresh(),
    reapply: (by) => watcher.reapply(by),
    registry: metrics.registry,
    log,
  });
  const nats = natsInBackground(config, overrides, log, (nc) => publisher.attach(nc));
  log.info(
    { interfaceName: config.POTLUCK_INTERFACE, intervalS: config.POTLUCK_FW_WATCH_INTERVAL },
    "watching the firewall",
  );
  watcher.start();
  return {
    app,
    watcher,
    firewall,
    async close() {
      await watcher.stop();
      // This also undoes a tick that raced systemd's ExecStop=--uninstall.
      await runUninstall(firewall, log).catch((error: unknown) =>
        log.error({ err: messageOf(error) }, "removing accept rules on stop failed"),
      );
      await publisher.close();
      await nats.close();
    },
  };
}

/** The injected connection, or one that keeps trying (visibly) until it exists or the service closes. */
function natsInBackground(
  config: FwWatcherConfig,
  overrides: FwWatcherOverrides,
  log: Logger,
  onConnected: (nc: NatsConnection) => void,
): { close(): Promise<void> } {
  if (overrides.nats !== undefined) {
    onConnected(overrides.nats);
    return { close: async () => undefined };
  }
  const stop = new AbortController();
  const connecting = connectNats({
    url: config.POTLUCK_NATS_URL,
    name: `fw-watcher-${config.POTLUCK_MACHINE}`,
    log,
    attemptsMax: Infinity,
    signal: stop.signal,
  }).then(
    (nc) => {
      onConnected(nc);
      return nc;
    },
    () => undefined,
  );
  return {
    async close() {
      stop.abort(new Error("the fw-watcher is stopping"));
      await (await connecting)?.drain().catch(() => undefined);
    },
  };
}
