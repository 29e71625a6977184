import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage } from "node:http";
import { InferStreamChunk } from "@potluck/protocol";
import { PeerClientLimits } from "./limits.js";

/** Headers for one request; `body` is exactly what goes on the wire. */
export interface OutgoingCall {
  url: string;
  method: string;
  /** Path with query, as signed. */
  path: string;
  body: string;
  headers: () => Record<string, string> | Promise<Record<string, string>>;
  agent: Agent;
  signal: AbortSignal;
}

/**
 * A socket error that came after the response began: node:http reports it on the request and
 * only "aborted" on the response, so it is kept here for the stream's error message.
 */
export const socketErrors = new WeakMap<IncomingMessage, Error>();

/**
 * One request; resolves with the response once its headers are in. A kept-alive connection the
 * peer closed while it sat idle fails at once with a reset; that request never reached the peer,
 * so it is sent once more on a fresh connection (with fresh headers: a signed nonce is single-use).
 */
export async function send(call: OutgoingCall, retried = false): Promise<IncomingMessage> {
  const headers = { ...(await call.headers()) };
  if (call.body.length > 0) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(call.body));
  }
  return new Promise((resolve, reject) => {
    let req: ClientRequest;
    let response: IncomingMessage | undefined;
    try {
      req = httpRequest(call.url, { method: call.method, agent: call.agent, headers, signal: call.signal }, (res) => {
        response = res;
        resolve(res);
      });
    } catch (error) {
      reject(error);
      return;
    }
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (response !== undefined) socketErrors.set(response, error);
      if (!retried && req.reusedSocket && error.code === "ECONNRESET" && !call.signal.aborted)
        resolve(send(call, true));
      else reject(error);
    });
    req.end(call.body.length > 0 ? call.body : undefined);
  });
}

/** The whole body, refused (and the connection dropped) past `responseBytesMax`. */
export async function readText(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let received = 0;
  for await (const part of res as AsyncIterable<Buffer>) {
    received += part.byteLength;
    if (received > PeerClientLimits.responseBytesMax) {
      res.destroy();
      throw new Error(`answer exceeds ${PeerClientLimits.responseBytesMax} bytes`);
    }
    parts.push(part);
  }
  return Buffer.concat(parts).toString("utf8");
}

/**
 * Splits a response into parsed chunks, bounded per line, with an idle deadline between reads so
 * a peer that vanishes without closing the connection (power off, link down) ends the stream. One
 * timer per stream, refreshed per read, rather than one per read.
 */
export async function* ndjsonChunks(res: IncomingMessage): AsyncGenerator<InferStreamChunk> {
  res.setEncoding("utf8");
  const idle = setTimeout(
    () => res.destroy(new Error(`no data for ${PeerClientLimits.streamIdleMsMax / 1000} s`)),
    PeerClientLimits.streamIdleMsMax,
  );
  let buffered = "";
  try {
    // Not destroyed when the caller stops after the final chunk: the few bytes that end the
    // response are drained by the caller instead, so the connection stays open for the next call.
    for await (const text of res.iterator({ destroyOnReturn: false }) as AsyncIterable<string>) {
      idle.refresh();
      buffered += text;
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line.length > 0) {
          const chunk = InferStreamChunk.safeParse(JSON.parse(line));
          if (!chunk.success)
            throw new Error(`unreadable stream chunk: ${chunk.error.issues[0]?.message ?? "invalid"}`);
          yield chunk.data;
        }
        newline = buffered.indexOf("\n");
      }
      if (buffered.length > PeerClientLimits.lineBytesMax)
        throw new Error(`a stream line exceeded ${PeerClientLimits.lineBytesMax} bytes`);
    }
  } finally {
    clearTimeout(idle);
  }
}
