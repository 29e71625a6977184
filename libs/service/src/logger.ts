/**
 * The part of pino every shared piece logs through, so a service hands its own pino logger in and
 * tests hand a recorder. Objects first, message second, as pino takes them.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** The message of anything thrown, for log fields and one-line errors. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** For callers that pass no logger (tests, benches): every line is dropped. */
export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
