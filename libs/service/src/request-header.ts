import type { HttpBindings } from "@hono/node-server";
import type { Context } from "hono";

/**
 * A request header, as `c.req.header(name)` gives it (every value of a repeated header joined by
 * ", "), read from Node's own request under @hono/node-server: the first `c.req.header()` there
 * builds a fetch Headers object from every raw header, tens of microseconds per request on this
 * machine before a prompt can start (BENCHMARKS.md, "Clients"). `name` is lower case.
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = (c.env as HttpBindings | undefined)?.incoming;
  if (incoming === undefined || !("headersDistinct" in incoming)) return c.req.header(name);
  return incoming.headersDistinct[name]?.join(", ");
}
