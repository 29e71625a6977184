import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsClusterConnectOptions, redactNatsUrl } from "@potluck/protocol";
import { messageOf, type Logger } from "./logger.js";

/** Bounds of the first connect; once connected, nats.js reconnects on its own, forever. */
export const NatsConnectLimits = {
  /** One attempt gives up after this long (a black-holed address would otherwise take 20 s). */
  attemptTimeoutMs: 5_000,
  /** The wait between attempts doubles from the first value up to the last. */
  retryMsMin: 250,
  retryMsMax: 5_000,
  /** Attempts before `NatsUnavailableError`: about five minutes at the longest wait. */
  attemptsMax: 60,
  /**
   * Wait between reconnects after a connection is lost, per server: with a cluster's list the
   * client moves to the next server at once, and waits this long before retrying one it tried.
   */
  reconnectWaitMs: 2_000,
  /** Up to this much is added to each wait, so a cluster's clients do not all return in one instant. */
  reconnectJitterMs: 500,
} as const;

export interface ConnectNatsOptions {
  /**
   * POTLUCK_NATS_URL: one server or a cluster's, comma-separated; credentials in it are passed as
   * options and never logged.
   */
  url: string;
  /** The client name the server shows (`potluck-coordinator`). */
  name: string;
  log: Logger;
  /** Infinity for a process whose other work goes on without NATS (it keeps trying in the background). */
  attemptsMax?: number;
  /** Stops the waiting (shutdown while NATS is still down). */
  signal?: AbortSignal;
}

/** NATS did not answer within the attempts allowed; the message names the redacted URL. */
export class NatsUnavailableError extends Error {
  override name = "NatsUnavailableError";
}

/**
 * The one way a service opens NATS. While the server is unreachable it logs
 * "waiting for NATS at <url>" on every failed attempt, with the reason, and retries with a bounded
 * backoff; a refused login is not retried (waiting does not fix credentials). Once connected, the
 * connection reconnects forever, across every server listed and those the cluster announces, and
 * says to which in the log, so a NATS restart, or one cluster member's death, is survivable.
 */
export async function connectNats(options: ConnectNatsOptions): Promise<NatsConnection> {
  const { url, name, log, attemptsMax = NatsConnectLimits.attemptsMax, signal } = options;
  const shown = redactNatsUrl(url);
  let waitMs: number = NatsConnectLimits.retryMsMin;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      const nc = await connect({
        ...natsClusterConnectOptions(url),
        name,
        timeout: NatsConnectLimits.attemptTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: NatsConnectLimits.reconnectWaitMs,
        reconnectJitter: NatsConnectLimits.reconnectJitterMs,
      });
      if (attempt > 1) log.info({ attempt, server: nc.getServer() }, `connected to NATS at ${shown}`);
      watchStatus(nc, shown, log);
      return nc;
    } catch (error) {
      if (isAuthFailure(error))
        throw new Error(`connecting to NATS at ${shown}: ${messageOf(error)}`, { cause: error });
      const ofMax = Number.isFinite(attemptsMax) ? ` of ${attemptsMax}` : "";
      log.warn(
        { attempt, err: messageOf(error), retryInMs: waitMs },
        `waiting for NATS at ${shown} (attempt ${attempt}${ofMax})`,
      );
      if (attempt >= attemptsMax)
        throw new NatsUnavailableError(
          `NATS at ${shown} did not answer after ${attempt} attempts: ${messageOf(error)}`,
          { cause: error },
        );
    }
    await sleep(waitMs, signal);
    waitMs = Math.min(waitMs * 2, NatsConnectLimits.retryMsMax);
  }
}

/** Lost and regained connections are logged, so an outage shows in the service's own log. */
function watchStatus(nc: NatsConnection, shown: string, log: Logger): void {
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect")
        log.warn({ server: status.server }, `NATS at ${shown} disconnected; reconnecting`);
      else if (status.type === "reconnect") log.info({ server: status.server }, `NATS at ${shown} reconnected`);
    }
  })();
}

function isAuthFailure(error: unknown): boolean {
  return /authorization|authentication/i.test(messageOf(error));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
