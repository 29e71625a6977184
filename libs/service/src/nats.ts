import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsConnectOptions, redactNatsUrl } from "@potluck/protocol";
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
  /** Wait between reconnects after a connection is lost. */
  reconnectWaitMs: 2_000,
} as const;

export interface ConnectNatsOptions {
  /** POTLUCK_NATS_URL; credentials in it are passed as options and never logged. */
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
 * connection reconnects forever and says so in the log, so a NATS restart is survivable.
 */
export async function connectNats(options: ConnectNatsOptions): Promise<NatsConnection> {
  const { url, name, log, attemptsMax = NatsConnectLimits.attemptsMax, signal } = options;
  const shown = redactNatsUrl(url);
  let waitMs: number = NatsConnectLimits.retryMsMin;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      const nc = await connect({
        ...natsConnectOptions(url),
        name,
        timeout: NatsConnectLimits.attemptTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: NatsConnectLimits.reconnectWaitMs,
      });
      if (attempt > 1) log.info({ attempt }, `connected to NATS at ${shown}`);
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
      if (status.type === "disconnect") log.warn(`NATS at ${shown} disconnected; reconnecting`);
      else if (status.type === "reconnect") log.info(`NATS at ${shown} reconnected`);
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
