import type { IncomingMessage, ServerResponse } from "node:http";
import type { HttpBindings } from "@hono/node-server";
import { ErrorCode, PotluckHttpError } from "@potluck/protocol";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";

/**
 * Request plumbing that stays on Node's own objects when @hono/node-server is the host. Touching
 * `c.req.raw.body` or `c.req.raw.signal` there makes the adapter build a full fetch Request with a
 * web stream over the socket, about a third of a millisecond per request on this machine, all of
 * it before a prompt can start. Under `app.request()` (tests) the portable paths are used.
 */

function nodeOf(c: Context): { incoming: IncomingMessage; outgoing: ServerResponse } | undefined {
  const env = c.env as HttpBindings | undefined;
  return env?.incoming !== undefined && env.outgoing !== undefined ? { incoming: env.incoming, outgoing: env.outgoing as ServerResponse } : undefined;
}

function tooLarge(maxSize: number): PotluckHttpError {
  return new PotluckHttpError(413, ErrorCode.bodyTooLarge, `body: larger than ${maxSize} bytes`, "body");
}

/**
 * A body bigger than `maxSize` is a 413 naming the limit, before anything parses it. On Node the
 * body is read straight from the socket into hono's body cache, which `c.req.json()`, `text()`
 * and `arrayBuffer()` (the validators, the signature check) all read from.
 */
export function limitBody(maxSize: number): MiddlewareHandler {
  const portable = bodyLimit({
    maxSize,
    onError: () => {
      throw tooLarge(maxSize);
    },
  });
  return async (c, next) => {
    const node = nodeOf(c);
    if (node === undefined || c.req.method === "GET" || c.req.method === "HEAD") return portable(c, next);
    const declared = Number(node.incoming.headers["content-length"] ?? 0);
    if (declared > maxSize) throw tooLarge(maxSize);
    const body = await readCapped(node.incoming, maxSize);
    // hono keeps promises in this cache (its type says values); json() parses the cached text.
    const cache = c.req.bodyCache as Record<string, Promise<unknown>>;
    cache.arrayBuffer = Promise.resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
    cache.text = Promise.resolve(body.toString("utf8"));
    return next();
  };
}

/** Reads the whole request body, refusing (413) as soon as it passes `maxSize`. */
function readCapped(incoming: IncomingMessage, maxSize: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
    };
    const onData = (part: Buffer) => {
      size += part.length;
      if (size > maxSize) {
        cleanup();
        // Keep draining so the connection can still carry the 413; the bytes go nowhere.
        incoming.resume();
        reject(tooLarge(maxSize));
        return;
      }
      parts.push(part);
    };
    const onEnd = () => {
      cleanup();
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onError);
  });
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
