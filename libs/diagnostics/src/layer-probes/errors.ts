import { ProbeError, ProbeErrorKind } from "../probes.js";

/** How a probe's failure reads in a message: an HTTP error by its status and code, anything else by its message. */
export function describe(error: unknown): string {
  if (error instanceof ProbeError && error.http !== undefined) {
    return `HTTP ${error.http.status}${error.http.code ? ` ${error.http.code}` : ""}${error.http.message ? `: ${error.http.message}` : ""}`;
  }
  return error instanceof Error ? error.message : String(error);
}

export function isKind(error: unknown, kind: ProbeErrorKind): boolean {
  return error instanceof ProbeError && error.kind === kind;
}

export function isUnauthorized(error: unknown): boolean {
  return error instanceof ProbeError && (error.http?.status === 401 || error.http?.status === 403);
}

/** The kind classification works on; an error that is no ProbeError could not reach the peer at all. */
export function kindOf(error: unknown): ProbeErrorKind {
  return error instanceof ProbeError ? error.kind : ProbeErrorKind.unreachable;
}
