import type { Logger } from "./logger.js";

/**
 * Graceful shutdown for every service: on SIGTERM, SIGINT or SIGBREAK (Windows) stop accepting,
 * let in-flight work finish for at most `drainMsMax`, then exit. A second signal exits at once.
 */
export function drainOnSignal(options: {
  /** What to close, or the things to close one after another (the server first, then the service). */
  close: (() => Promise<void>) | readonly { close(): Promise<void> }[];
  /** A service's logger (lines at info) or any function taking a line. */
  log: Logger | ((message: string) => void);
  drainMsMax?: number;
}): void {
  const { drainMsMax = 10_000 } = options;
  const close = typeof options.close === "function" ? options.close : inOrder(options.close);
  const sink = options.log;
  const log = typeof sink === "function" ? sink : (message: string) => sink.info(message);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log(`${signal} again; exiting now`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal} received; draining (at most ${drainMsMax} ms)`);
    const timer = setTimeout(() => {
      log("drain took too long; exiting");
      process.exit(1);
    }, drainMsMax);
    timer.unref();
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        log(`error while draining: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  // Windows has no SIGTERM: a console Ctrl+C (what WinSW sends to stop a service) arrives as
  // SIGINT and Ctrl+Break as SIGBREAK; elsewhere SIGBREAK is never delivered, so listening is harmless.
  process.on("SIGINT", stop);
  process.on("SIGBREAK", stop);
}

function inOrder(closables: readonly { close(): Promise<void> }[]): () => Promise<void> {
  return async () => {
    for (const closable of closables) await closable.close();
  };
}
