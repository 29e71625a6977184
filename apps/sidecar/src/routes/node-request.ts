import type { IncomingMessage, ServerResponse } from "node:http";
import type { HttpBindings } from "@hono/node-server";
import { limitBody as limitBodyWhileStreaming } from "@potluck/service";
import type { Context, MiddlewareHandler } from "hono";

/**
 * Request plumbing that stays on Node's own objects when @hono/node-server is the host. Touching
 * `c.req.raw.body` or `c.req.raw.signal` there makes the adapter build a full fetch Request with a
 * web stream over the socket, about a third of a millisecond per request on this machine, all of
 * it before a prompt can start. Under `app.request()` (tests) the portable paths are used.
 */

function nodeOf(c: Context): { incoming: IncomingMessage; outgoing: ServerResponse } | undefined {
  const env = c.env as HttpBindings | undefined;
  return env?.incoming !== undefined && env.outgoing !== undefined
    ? { incoming: env.incoming, outgoing: env.outgoing as ServerResponse }
    : undefined;
}

/** A body bigger than `maxSize` is a 413 naming the limit, before anything parses it (see @potluck/service). */
export function limitBody(maxSize: number): MiddlewareHandler {
  return limitBodyWhileStreaming({ bytesMax: maxSize });
}

/** Calls `onGone` if the client disconnects before the response has been sent in full. */
export function onClientGone(c: Context, onGone: () => void): void {
  const node = nodeOf(c);
  if (node === undefined) {
    c.req.raw.signal.addEventListener("abort", onGone, { once: true });
    return;
  }
  node.outgoing.once("close", () => {
    if (!node.outgoing.writableFinished) onGone();
  });
}
