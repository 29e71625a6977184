/**
 * The one sentence for a local service that did not answer a CLI or MCP call. undici's own
 * message is "fetch failed" whatever happened; the cause ("connect ECONNREFUSED 127.0.0.1:8321",
 * a DNS failure) is what tells a user whether the service is down or the address is wrong, and
 * `potluck up` is what starts it.
 */
export function unreachableMessage(service: "sidecar" | "ledger", base: string, error: unknown): string {
  if (error instanceof Error && error.name === "TimeoutError")
    return `the ${service} at ${base} did not answer in time (is it overloaded or stuck? see its log)`;
  const cause =
    error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
  return `no ${service} answers at ${base} (${cause}); start it with potluck up`;
}
