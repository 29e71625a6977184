import type { IncomingMessage } from "node:http";
import type { HttpBindings } from "@hono/node-server";
import { ErrorCode, PotluckHttpError } from "@potluck/protocol";
import type { Context, MiddlewareHandler } from "hono";
import { requestHeader } from "./request-header.js";

export interface BodyLimitOptions {
  bytesMax: number;
  /** Names the body in the 413 (`field` and message); "body" unless the route calls it something else. */
  what?: string;
}

/**
 * Bounds a request body while it streams in: a declared length over the limit is refused before
 * a byte is read, and a chunked body is counted as it arrives and refused the moment it passes
 * the limit, so nothing bigger than `bytesMax` is ever held. The bytes that were read go into
 * hono's body cache, which `c.req.json()`, `text()` and `arrayBuffer()` (validators, signature
 * checks) all read from.
 *
 * On @hono/node-server the body is read straight from the socket: touching `c.req.raw.body` there
 * makes the adapter build a fetch Request and a web stream per request, a cost paid before a
 * prompt can start (see BENCHMARKS.md). Elsewhere (`app.request()` in tests) the web stream is read.
 */
export function limitBody({ bytesMax, what = "body" }: BodyLimitOptions): MiddlewareHandler {
  const tooLarge = () =>
    new PotluckHttpError(413, ErrorCode.bodyTooLarge, `${what}: larger than ${bytesMax} bytes`, what);
  return async (c, next) => {
    // A GET or HEAD carries a body only when it declares one (a length or chunked); one that
    // does is bounded like any other, since a signature check may still read it.
    const declaredLength = requestHeader(c, "content-length");
    if (
      (c.req.method === "GET" || c.req.method === "HEAD") &&
      declaredLength === undefined &&
      requestHeader(c, "transfer-encoding") === undefined
    )
      return next();
    const declared = Number(declaredLength ?? 0);
    if (declared > bytesMax) throw tooLarge();
    // Mounted twice on one route (an app and its sub-app): the body was read once already.
    const cached = c.req.bodyCache.arrayBuffer as Promise<ArrayBuffer> | undefined;
    if (cached !== undefined) {
      if ((await cached).byteLength > bytesMax) throw tooLarge();
      return next();
    }
    const incoming = incomingOf(c);
    const body =
      incoming === undefined
        ? await readWebCapped(c, bytesMax, tooLarge)
        : await readNodeCapped(incoming, bytesMax, tooLarge);
    if (body === undefined) return next();
    // hono keeps promises in this cache (its type says values); json() parses the cached text.
    const cache = c.req.bodyCache as Record<string, Promise<unknown>>;
    cache.arrayBuffer = Promise.resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
    cache.text = Promise.resolve(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
    return next();
  };
}

function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as HttpBindings | undefined)?.incoming;
}

/** Reads the socket's body, refusing as soon as it passes `bytesMax`. */
function readNodeCapped(incoming: IncomingMessage, bytesMax: number, tooLarge: () => Error): Promise<Uint8Array> {
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
      if (size > bytesMax) {
        cleanup();
        // Keep reading so the connection can still carry the 413; the bytes go nowhere.
        incoming.resume();
        reject(tooLarge());
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

/** The same over a fetch Request's web stream; undefined when there is no body at all. */
async function readWebCapped(c: Context, bytesMax: number, tooLarge: () => Error): Promise<Uint8Array | undefined> {
  const stream = c.req.raw.body;
  if (stream === null) return undefined;
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > bytesMax) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    parts.push(value);
  }
  const body = Buffer.concat(parts, size);
  // Anything that reads the raw request later (rather than through the cache) gets the same bytes.
  c.req.raw = new Request(c.req.raw, { body });
  return body;
}
