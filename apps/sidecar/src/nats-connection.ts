import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, messageOf, type Logger } from "@potluck/service";
import type { SidecarConfig } from "./config.js";
import type { NatsParts } from "./nats-parts.js";

export interface SidecarNats {
  /** Settles when NATS is up or after the start-up wait, whichever is first; never rejects. */
  started: Promise<void>;
  /** Stops waiting for NATS and drains the connection if the service opened it. */
  close(): Promise<void>;
}

/**
 * The sidecar's one NATS connection, handed to its NATS parts once it is up. An injected
 * connection is used as it is (null: none at all). Otherwise it keeps trying in the background,
 * saying that it waits: a sidecar without NATS still serves its own user, so start-up waits only
 * `startWaitMs` for it and the parts attach whenever it answers.
 */
export function startSidecarNats(options: {
  config: SidecarConfig;
  injected: NatsConnection | null | undefined;
  parts: NatsParts;
  log: Logger;
  startWaitMs: number;
}): SidecarNats {
  const { config, injected, parts, log } = options;
  if (injected !== undefined) {
    if (injected !== null) parts.attach(injected);
    return { started: Promise.resolve(), close: async () => undefined };
  }
  const abort = new AbortController();
  let own: NatsConnection | undefined;
  const name = `potluck-sidecar-${config.POTLUCK_MACHINE}`;
  const opening = connectNats({
    url: config.POTLUCK_NATS_URL,
    name,
    log: waitsThrottled(log, waitLogIntervalMs),
    attemptsMax: Infinity,
    signal: abort.signal,
  }).then(
    (nats) => {
      own = nats;
      parts.attach(nats);
    },
    (error: unknown) => {
      if (!abort.signal.aborted)
        log.warn(
          `${messageOf(error)}; running without NATS: usage events are logged, not published, and no heartbeats are sent`,
        );
    },
  );
  return {
    started: settledWithin(opening, options.startWaitMs),
    async close() {
      abort.abort();
      await opening;
      await own?.drain().catch(() => undefined);
    },
  };
}

/**
 * A machine without NATS keeps trying for as long as it runs; its log says it waits at most this
 * often (the first time at once), not on every attempt. Other lines pass through.
 */
const waitLogIntervalMs = 60_000;

function waitsThrottled(log: Logger, intervalMs: number): Logger {
  let lastMs = -Infinity;
  const warn: Logger["warn"] = (first: object | string, msg?: string) => {
    const isWait = (typeof first === "string" ? first : (msg ?? "")).startsWith("waiting for NATS");
    if (isWait && Date.now() - lastMs < intervalMs) return;
    if (isWait) lastMs = Date.now();
    if (typeof first === "string") log.warn(first);
    else log.warn(first, msg);
  };
  return { info: log.info.bind(log), warn, error: log.error.bind(log) };
}

function settledWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
