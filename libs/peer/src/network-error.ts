/**
 * The one way a failed network call is named, for routing, diagnostics and fleet search alike:
 * a kind that classification can act on, and a sentence a person can act on.
 */
export const NetworkErrorKind = {
  /** The host answered with a reset: it is up and routable, but nothing listens on the port. */
  refused: "refused",
  /** No answer at all within the budget: dropped somewhere (firewall, black hole, powered off). */
  timeout: "timeout",
  /** An ICMP unreachable or no route: the network said no (also anything unrecognised). */
  unreachable: "unreachable",
  /** The connection was cut after it opened. */
  reset: "reset",
} as const;
export type NetworkErrorKind = (typeof NetworkErrorKind)[keyof typeof NetworkErrorKind];

export interface NetworkFailure {
  kind: NetworkErrorKind;
  message: string;
}

/**
 * Maps what node:http, node:net and fetch throw. An abort or timeout of ours (an AbortSignal)
 * names its reason: which budget ran out, or that the caller went away.
 */
export function classifyNetworkError(error: unknown): NetworkFailure {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    const reason = (error as { cause?: unknown }).cause;
    const why = reason instanceof Error ? reason.message : error instanceof Error ? error.message : String(error);
    return { kind: NetworkErrorKind.timeout, message: `no answer in time (${why})` };
  }
  const code = errorCode(error);
  switch (code) {
    case "ECONNREFUSED":
      return { kind: NetworkErrorKind.refused, message: "connection refused (nothing listening on that port)" };
    // Kept-alive sockets probe an idle connection every second, ten times (libuv's keepalive): a
    // peer that lost power or its link is declared gone after that many seconds of silence.
    case "ETIMEDOUT":
      return {
        kind: NetworkErrorKind.timeout,
        message: "the peer stopped answering (connection timed out, ETIMEDOUT)",
      };
    case "UND_ERR_CONNECT_TIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return { kind: NetworkErrorKind.timeout, message: `no answer (${code})` };
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EHOSTDOWN":
    case "ENETDOWN":
    case "EADDRNOTAVAIL":
      return { kind: NetworkErrorKind.unreachable, message: `host unreachable (${code})` };
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_SOCKET":
      return {
        kind: NetworkErrorKind.reset,
        message: `connection reset by the peer (${messageOf(innermost(error)) || code})`,
      };
    default:
      return { kind: NetworkErrorKind.unreachable, message: messageOf(error) };
  }
}

/** fetch wraps the socket error in `cause` (sometimes twice); the first errno-style code wins. */
function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== null && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    if ((current as { name?: unknown }).name === "TimeoutError") return "ETIMEDOUT";
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The error that carries the code: fetch's own message ("fetch failed") says nothing. */
function innermost(error: unknown): unknown {
  let current: unknown = error;
  for (let depth = 0; depth < 4; depth++) {
    if (current === null || typeof current !== "object" || typeof (current as { code?: unknown }).code === "string")
      return current;
    const cause = (current as { cause?: unknown }).cause;
    if (cause === undefined) return current;
    current = cause;
  }
  return current;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
