/**
 * Whether a failed statement failed because of the database's state rather than its input: the
 * server restarting, a connection lost, a lock cycle. A retry later may succeed, so a request is
 * answered 503 (jsonErrors), and the ledger's ingest redelivers the batch rather than park the
 * event: a PostgreSQL crash once answered "the database system is starting up" for one event and
 * `select 1` a moment later, and that good event was parked as if it were poison.
 */
export function isTransientDbError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < maxCauseDepth; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== "string") continue;
    if (clientCodes.has(code)) return true;
    // SQLSTATE: 08 connection exception, 53 insufficient resources, 57P01-57P03 shutdown and
    // start-up, 40001 serialization failure, 40P01 deadlock (PostgreSQL appendix A).
    if (/^(08|53)[0-9A-Z]{3}$/.test(code) || /^57P0[1-3]$/.test(code) || code === "40001" || code === "40P01")
      return true;
  }
  return false;
}

/** The ORM wraps the driver's error, which may wrap a socket's: a few levels suffice. */
const maxCauseDepth = 8;

/** Node's socket errors and postgres-js's own connection errors. */
const clientCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);
