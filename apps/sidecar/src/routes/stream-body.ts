import type { ServerResponse } from "node:http";
import type { HttpBindings } from "@hono/node-server";
import type { Context } from "hono";

/**
 * Tokens closer together than this share one event (the engine joins them; see `batchWindowMs`).
 * Each event costs a write here (a syscall on the thread that also feeds the model), a wake-up, a
 * read and a parse in the client — and over the mesh a WireGuard packet each way. At the tiny
 * model's rate that per-event cost, not the model, set the pace: a 4 ms window left decode well
 * below raw, 16 ms close to it (BENCHMARKS.md, "Inference"). 16 ms is one display frame, so
 * nobody sees the joining, and a real model (tens of ms per token) still gets one event per token.
 * The first token and the end of the reply are never held.
 */
export const coalesceWindowMs = 16;

/**
 * A client that has taken no bytes for this long while the socket's buffers are full is cut off:
 * it is not reading, and the reply it stalls holds the model's only slot (the generator releases
 * it only when the stream ends). Generous for a slow link, which still drains its buffers within
 * seconds; the same order as a requester's own patience with a silent peer
 * (PeerClientLimits.streamIdleMsMax in libs/peer).
 */
export const stalledReaderMsMax = 30_000;

/** @hono/node-server skips its own response handling for a Response carrying this header. */
const alreadySentHeader = "x-hono-already-sent";

export interface StreamOptions<T> {
  headers: Record<string, string>;
  /** One item's bytes on the wire, or undefined to send nothing for it. */
  encode: (item: T) => string | undefined;
  /** Stops the work behind the stream (the model or the upstream peer) when the client goes away. */
  onCancel: () => void;
  trailer?: string;
  /**
   * An item already taken from `source` (a route pulls the first chunk before answering, so a
   * refusal is a status): it goes out with the headers, in the same call, before any await.
   */
  first?: IteratorResult<T>;
  /** Overrides `stalledReaderMsMax` (tests). */
  stalledReaderMs?: number;
}

/**
 * A streamed HTTP response fed by an async iterator. Under @hono/node-server it writes straight to
 * the Node response: no web ReadableStream per chunk, no TextEncoder, and no wait in the adapter
 * (which, without a transfer-encoding header, holds the first write for a timer tick to see if the
 * body is short). Elsewhere (`app.request()` in tests) it falls back to a ReadableStream body.
 *
 * Under Node the Response is handed back only once the reply has been sent: the adapter builds a
 * fetch Response to read its one header, and the framework unwinds its middleware, all work that
 * would otherwise sit on the JS thread between the first token's write and the next token.
 */
export function streamResponse<T>(
  c: Context,
  source: AsyncIterator<T>,
  options: StreamOptions<T>,
): Response | Promise<Response> {
  const outgoing = (c.env as HttpBindings | undefined)?.outgoing as ServerResponse | undefined;
  if (outgoing === undefined || typeof outgoing.writeHead !== "function") {
    return new Response(readableBody(source, options), { headers: options.headers });
  }
  return pumpToNode(outgoing, source, options).then(
    () => new Response(null, { headers: { [alreadySentHeader]: "1" } }),
  );
}

async function pumpToNode<T>(res: ServerResponse, source: AsyncIterator<T>, options: StreamOptions<T>): Promise<void> {
  let closed = false;
  res.once("close", () => {
    closed = true;
    if (!res.writableFinished) options.onCancel();
  });
  try {
    // Node's server already disables Nagle by default; said explicitly because a token is tiny.
    res.socket?.setNoDelay(true);
    res.writeHead(200, options.headers);
    for (let next = options.first ?? (await source.next()); ; next = await source.next()) {
      if (closed || res.destroyed) return;
      if (next.done === true) {
        res.end(options.trailer);
        return;
      }
      const text = options.encode(next.value);
      if (text === undefined) continue;
      // Sources batch their own tokens (see coalesceWindowMs), so every item goes out at once.
      if (!res.write(text)) await drained(res, options.stalledReaderMs ?? stalledReaderMsMax);
    }
  } catch (error) {
    // Headers are gone; a broken connection is the only honest signal left to the client.
    res.destroy(error instanceof Error ? error : new Error(String(error)));
  } finally {
    // Closing the source stops the model or the upstream call; its own failure has nowhere to go.
    await source.return?.(undefined)?.catch(() => undefined);
  }
}

/**
 * Resolves when the socket can take more, or is gone (the loop then sees `closed`). A reader that
 * takes nothing for `stalledMs` has its connection destroyed, which closes it: the model is
 * stopped through `onCancel` and its slot freed when the loop returns.
 */
function drained(res: ServerResponse, stalledMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    const timer = setTimeout(() => {
      res.destroy(
        new Error(
          `client took no bytes for ${stalledMs} ms while the reply waited (stalledReaderMsMax); cut to free the model`,
        ),
      );
      done();
    }, stalledMs);
    res.on("drain", done);
    res.on("close", done);
  });
}

/** The portable body, for hosts that are not @hono/node-server (tests calling `app.request()`). */
function readableBody<T>(source: AsyncIterator<T>, options: StreamOptions<T>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let finished = false;
  let first = options.first;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const next = first ?? (await source.next());
          first = undefined;
          if (next.done === true) {
            finished = true;
            if (options.trailer !== undefined) controller.enqueue(encoder.encode(options.trailer));
            controller.close();
            return;
          }
          const text = options.encode(next.value);
          if (text !== undefined) {
            controller.enqueue(encoder.encode(text));
            return;
          }
        }
      } catch (error) {
        finished = true;
        controller.error(error);
      }
    },
    cancel() {
      if (!finished) options.onCancel();
    },
  });
}
