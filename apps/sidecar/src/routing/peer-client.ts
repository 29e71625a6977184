import { Capabilities, ErrorBody, InferStreamChunk, ProbeResponse, type LayerCode, type PeerInferRequest } from "@potluck/protocol";
import type { Identity } from "../peer/identity.js";
import type { PeerRecord } from "../peer/directory.js";

/** Bounds on calls to another sidecar. */
export const PeerClientLimits = {
  /** A probe or capabilities call that takes longer counts as a failed data plane. */
  probeTimeoutMs: 5_000,
  /** Connect + response headers of /peer/infer (the peer may queue us briefly). */
  inferStartTimeoutMs: 30_000,
  /** Silence between two stream chunks after which the peer is given up on (not a hang). */
  streamIdleMsMax: 30_000,
  /** One NDJSON line may not exceed this; a token chunk is a few bytes. */
  lineBytesMax: 256 * 1024,
  probeBytes: 1_200,
} as const;

/** A failed call, with the layer it failed at, for the "which layer failed" answer. */
export class PeerCallError extends Error {
  override name = "PeerCallError";
  constructor(readonly layer: LayerCode, message: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Signed HTTP calls to other sidecars' /peer/* API. */
export class PeerClient {
  constructor(private readonly identity: Identity) {}

  /** POST /peer/probe with `bytes` of payload; the data plane is good only if it comes back intact. */
  async probe(peer: PeerRecord, bytes: number = PeerClientLimits.probeBytes): Promise<{ latencyMs: number }> {
    const payload = "p".repeat(bytes);
    const started = performance.now();
    const res = await this.call(peer, "POST", "/peer/probe", JSON.stringify({ payload }), AbortSignal.timeout(PeerClientLimits.probeTimeoutMs));
    const body = ProbeResponse.safeParse(await readJson(res, peer));
    if (!body.success || body.data.payload !== payload) throw new PeerCallError("data-plane", `${peer.machine} echoed a different probe payload (${bytes} bytes sent)`);
    return { latencyMs: performance.now() - started };
  }

  async capabilities(peer: PeerRecord): Promise<Capabilities> {
    const res = await this.call(peer, "GET", "/peer/capabilities", "", AbortSignal.timeout(PeerClientLimits.probeTimeoutMs));
    const body = Capabilities.safeParse(await readJson(res, peer));
    if (!body.success) throw new PeerCallError("capabilities", `${peer.machine} sent capabilities this version cannot read: ${body.error.issues[0]?.message ?? "invalid"}`);
    return body.data;
  }

  /** POST /peer/infer and yield its NDJSON chunks; a broken or silent stream ends with an error chunk. */
  async *infer(peer: PeerRecord, request: PeerInferRequest, signal?: AbortSignal): AsyncGenerator<InferStreamChunk> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const startTimer = setTimeout(() => controller.abort(new Error(`no response within ${PeerClientLimits.inferStartTimeoutMs / 1000} s`)), PeerClientLimits.inferStartTimeoutMs);
    let tokens = 0;
    try {
      const res = await this.call(peer, "POST", "/peer/infer", JSON.stringify(request), controller.signal);
      clearTimeout(startTimer);
      if (res.body === null) throw new PeerCallError("first-token", `${peer.machine} answered /peer/infer without a body`);
      for await (const chunk of ndjsonChunks(res.body, controller)) {
        if (chunk.type === "token") tokens++;
        yield chunk;
        if (chunk.type !== "token") return;
      }
      yield streamBroken(peer, tokens, "the connection closed before the final chunk");
    } catch (error) {
      if (error instanceof PeerCallError && tokens === 0) throw error;
      if (signal?.aborted === true) return;
      yield streamBroken(peer, tokens, describeFetchError(error));
    } finally {
      clearTimeout(startTimer);
      signal?.removeEventListener("abort", onAbort);
      controller.abort(new Error("stream finished"));
    }
  }

  private async call(peer: PeerRecord, method: string, path: string, body: string, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { ...this.identity.sign({ method, path, body }) };
    if (body.length > 0) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(`${peer.url}${path}`, { method, headers, body: body.length > 0 ? body : undefined, signal });
    } catch (error) {
      throw new PeerCallError("data-plane", `${method} ${peer.url}${path}: ${describeFetchError(error)}`, undefined, { cause: error });
    }
    if (res.ok) return res;
    const parsed = ErrorBody.safeParse(await res.json().catch(() => undefined));
    const detail = parsed.success ? `${parsed.data.error.code}: ${parsed.data.error.message}` : `HTTP ${res.status}`;
    const layer: LayerCode = res.status === 401 ? "roster" : res.status === 503 ? "model-runtime" : "capabilities";
    throw new PeerCallError(layer, `${peer.machine} refused ${method} ${path} (${res.status} ${detail})`, res.status);
  }
}

async function readJson(res: Response, peer: PeerRecord): Promise<unknown> {
  try {
    return await res.json();
  } catch (error) {
    throw new PeerCallError("data-plane", `${peer.machine}: response body lost mid-way (${describeFetchError(error)})`);
  }
}

/**
 * Splits a byte stream into parsed chunks, bounded per line, with an idle deadline between reads
 * so a peer that vanishes without closing the connection (power off, link down) ends the stream.
 */
async function* ndjsonChunks(body: ReadableStream<Uint8Array>, controller: AbortController): AsyncGenerator<InferStreamChunk> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const idle = setTimeout(() => controller.abort(new Error(`no data for ${PeerClientLimits.streamIdleMsMax / 1000} s`)), PeerClientLimits.streamIdleMsMax);
      const { done, value } = await reader.read().finally(() => clearTimeout(idle));
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      if (buffered.length > PeerClientLimits.lineBytesMax) throw new Error(`a stream line exceeded ${PeerClientLimits.lineBytesMax} bytes`);
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line.length > 0) {
          const chunk = InferStreamChunk.safeParse(JSON.parse(line));
          if (!chunk.success) throw new Error(`unreadable stream chunk: ${chunk.error.issues[0]?.message ?? "invalid"}`);
          yield chunk.data;
        }
        newline = buffered.indexOf("\n");
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function streamBroken(peer: PeerRecord, tokens: number, reason: string): InferStreamChunk {
  return {
    type: "error",
    code: "peer_stream_broken",
    message: `${peer.machine} stopped streaming after ${tokens} token chunk(s): ${reason}`,
    layer: "data-plane",
  };
}

/** Node's fetch hides the socket error in `cause`; name it the way diagnostics do. */
export function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const code = cause?.code;
  if (code === "ECONNREFUSED") return "connection refused (nothing listening on the peer's sidecar port)";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return `host unreachable (${code})`;
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") return `connection reset by the peer (${cause?.message ?? code})`;
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) return `no answer in time (${error.message})`;
  if (error instanceof Error) return cause?.message !== undefined ? `${error.message}: ${cause.message}` : error.message;
  return String(error);
}
