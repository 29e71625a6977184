import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { Capabilities, ErrorBody, InferStreamChunk, ProbeResponse, type LayerCode, type PeerInferRequest, type ProbeModel, type ProbeRequest } from "@potluck/protocol";
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
  /** A probe, capabilities or error answer larger than this is refused, not buffered. */
  responseBytesMax: 1024 * 1024,
  probeBytes: 1_200,
  /** Connections per peer and pool: probes are one at a time per routing decision; streams are bounded by the peer's queue. */
  probeSocketsPerPeerMax: 4,
  streamSocketsPerPeerMax: 16,
} as const;

export interface PeerAgents {
  /** Probes only. */
  probe: Agent;
  /** Streams and capabilities. */
  stream: Agent;
}

/**
 * Kept-alive connection pools. Probes get connections of their own, as diagnostics' probes do
 * (libs/diagnostics http.ts): a probe must test the path as it is now, and on a connection shared
 * with a stream it could sit behind that stream's lost segment and fail for the wrong reason.
 */
export function peerAgents(): PeerAgents {
  return {
    probe: new Agent({ keepAlive: true, maxSockets: PeerClientLimits.probeSocketsPerPeerMax, maxFreeSockets: PeerClientLimits.probeSocketsPerPeerMax }),
    stream: new Agent({ keepAlive: true, maxSockets: PeerClientLimits.streamSocketsPerPeerMax, maxFreeSockets: PeerClientLimits.probeSocketsPerPeerMax }),
  };
}

/** A failed call, with the layer it failed at, for the "which layer failed" answer. */
export class PeerCallError extends Error {
  override name = "PeerCallError";
  constructor(readonly layer: LayerCode, message: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Signed HTTP calls to other sidecars' /peer/* API, on node:http with kept-alive connections.
 * Not fetch: in the lab, a signed probe over the mesh took 3.3 ms through fetch (undici and its web
 * streams) and 1.5 ms through node:http, on the 2-core box where that CPU is taken from the model
 * that serves the reply; a relayed stream pays fetch's web-stream cost per chunk as well.
 */
export class PeerClient {
  private readonly probeAgent: Agent;
  private readonly streamAgent: Agent;

  /** `agents`: tests pass their own to watch the connections. */
  constructor(private readonly identity: Identity, agents: PeerAgents = peerAgents()) {
    this.probeAgent = agents.probe;
    this.streamAgent = agents.stream;
  }

  /**
   * POST /peer/probe with `bytes` of payload; the data plane is good only if it comes back intact.
   * With `model`, the answer also says that model's state there (`model` is undefined when the
   * peer's version predates that; ask its capabilities instead).
   */
  async probe(peer: PeerRecord, options: { bytes?: number; model?: string } = {}): Promise<{ latencyMs: number; model?: ProbeModel }> {
    const bytes = options.bytes ?? PeerClientLimits.probeBytes;
    const payload = "p".repeat(bytes);
    const request: ProbeRequest = options.model === undefined ? { payload } : { payload, model: options.model };
    const started = performance.now();
    const res = await this.call(this.probeAgent, peer, "POST", "/peer/probe", JSON.stringify(request), AbortSignal.timeout(PeerClientLimits.probeTimeoutMs));
    const body = ProbeResponse.safeParse(await readJson(res, peer));
    if (!body.success || body.data.payload !== payload) throw new PeerCallError("data-plane", `${peer.machine} echoed a different probe payload (${bytes} bytes sent)`);
    const latencyMs = performance.now() - started;
    return body.data.model === undefined ? { latencyMs } : { latencyMs, model: body.data.model };
  }

  async capabilities(peer: PeerRecord): Promise<Capabilities> {
    const res = await this.call(this.streamAgent, peer, "GET", "/peer/capabilities", "", AbortSignal.timeout(PeerClientLimits.probeTimeoutMs));
    const body = Capabilities.safeParse(await readJson(res, peer));
    if (!body.success) throw new PeerCallError("capabilities", `${peer.machine} sent capabilities this version cannot read: ${body.error.issues[0]?.message ?? "invalid"}`);
    return body.data;
  }

  /**
   * POST /peer/infer and yield its NDJSON chunks; a broken or silent stream ends with an error
   * chunk. A stream read to its end leaves its connection to the pool for the next call; one the
   * caller stops early is destroyed, which is how the peer learns to stop generating.
   */
  async *infer(peer: PeerRecord, request: PeerInferRequest, signal?: AbortSignal): AsyncGenerator<InferStreamChunk> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted === true) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const startTimer = setTimeout(() => controller.abort(new Error(`no response within ${PeerClientLimits.inferStartTimeoutMs / 1000} s`)), PeerClientLimits.inferStartTimeoutMs);
    let tokens = 0;
    let res: IncomingMessage | undefined;
    let finished = false;
    try {
      res = await this.call(this.streamAgent, peer, "POST", "/peer/infer", JSON.stringify(request), controller.signal);
      clearTimeout(startTimer);
      for await (const chunk of ndjsonChunks(res)) {
        if (chunk.type === "token") tokens++;
        else finished = true;
        yield chunk;
        if (chunk.type !== "token") return;
      }
      yield streamBroken(peer, tokens, "the connection closed before the final chunk");
    } catch (error) {
      if (error instanceof PeerCallError && tokens === 0) throw error;
      if (signal?.aborted === true) return;
      // The socket's own error says why (a keepalive timeout, a reset); the response only says "aborted".
      yield streamBroken(peer, tokens, describeNetworkError((res === undefined ? undefined : socketErrors.get(res)) ?? error));
    } finally {
      clearTimeout(startTimer);
      signal?.removeEventListener("abort", onAbort);
      // After the final chunk the response is complete (or about to be): its connection goes back
      // to the pool. Anything else (the caller stopped early, an error) must close it.
      if (res !== undefined && finished) res.resume();
      else res?.destroy();
      if (!finished) controller.abort(new Error("stream abandoned"));
    }
  }

  private async call(agent: Agent, peer: PeerRecord, method: string, path: string, body: string, signal: AbortSignal): Promise<IncomingMessage> {
    let res: IncomingMessage;
    try {
      res = await send(agent, `${peer.url}${path}`, method, path, body, signal, this.identity);
    } catch (error) {
      throw new PeerCallError("data-plane", `${method} ${peer.url}${path}: ${describeNetworkError(error)}`, undefined, { cause: error });
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const text = await readText(res).catch(() => "");
    let parsed: ReturnType<typeof ErrorBody.safeParse> | undefined;
    try {
      parsed = ErrorBody.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    const detail = parsed?.success === true ? `${parsed.data.error.code}: ${parsed.data.error.message}` : `HTTP ${status}`;
    const layer: LayerCode = status === 401 ? "roster" : status === 503 ? "model-runtime" : "capabilities";
    throw new PeerCallError(layer, `${peer.machine} refused ${method} ${path} (${status} ${detail})`, status);
  }
}

/**
 * A socket error that came after the response began: node:http reports it on the request and
 * only "aborted" on the response, so it is kept here for the stream's error message.
 */
const socketErrors = new WeakMap<IncomingMessage, Error>();

/**
 * One signed request; resolves with the response once its headers are in. A kept-alive connection
 * the peer closed while it sat idle fails at once with a reset; that request never reached the
 * peer, so it is sent once more on a fresh connection (re-signed: a nonce is single-use).
 */
function send(agent: Agent, url: string, method: string, path: string, body: string, signal: AbortSignal, identity: Identity, retried = false): Promise<IncomingMessage> {
  const headers: Record<string, string> = identity.sign({ method, path, body });
  if (body.length > 0) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    let req: ClientRequest;
    let response: IncomingMessage | undefined;
    try {
      req = httpRequest(url, { method, agent, headers, signal }, (res) => {
        response = res;
        resolve(res);
      });
    } catch (error) {
      reject(error);
      return;
    }
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (response !== undefined) socketErrors.set(response, error);
      if (!retried && req.reusedSocket && error.code === "ECONNRESET" && !signal.aborted) resolve(send(agent, url, method, path, body, signal, identity, true));
      else reject(error);
    });
    req.end(body.length > 0 ? body : undefined);
  });
}

async function readText(res: IncomingMessage): Promise<string> {
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

async function readJson(res: IncomingMessage, peer: PeerRecord): Promise<unknown> {
  let text: string;
  try {
    text = await readText(res);
  } catch (error) {
    throw new PeerCallError("data-plane", `${peer.machine}: response body lost mid-way (${describeNetworkError(error)})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new PeerCallError("capabilities", `${peer.machine} answered with a body that is not JSON`);
  }
}

/**
 * Splits a response into parsed chunks, bounded per line, with an idle deadline between reads so
 * a peer that vanishes without closing the connection (power off, link down) ends the stream. One
 * timer per stream, refreshed per read, rather than one per read.
 */
async function* ndjsonChunks(res: IncomingMessage): AsyncGenerator<InferStreamChunk> {
  res.setEncoding("utf8");
  const idle = setTimeout(() => res.destroy(new Error(`no data for ${PeerClientLimits.streamIdleMsMax / 1000} s`)), PeerClientLimits.streamIdleMsMax);
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
          if (!chunk.success) throw new Error(`unreadable stream chunk: ${chunk.error.issues[0]?.message ?? "invalid"}`);
          yield chunk.data;
        }
        newline = buffered.indexOf("\n");
      }
      if (buffered.length > PeerClientLimits.lineBytesMax) throw new Error(`a stream line exceeded ${PeerClientLimits.lineBytesMax} bytes`);
    }
  } finally {
    clearTimeout(idle);
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

/** A socket error named the way diagnostics names it; an abort names its reason (which timeout, or the caller). */
export function describeNetworkError(error: unknown): string {
  const own = error as { code?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
  const code = own?.code ?? own?.cause?.code;
  if (code === "ECONNREFUSED") return "connection refused (nothing listening on the peer's sidecar port)";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return `host unreachable (${code})`;
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") return `connection reset by the peer (${own?.message ?? code})`;
  // Kept-alive sockets probe an idle connection every second, ten times (libuv's keepalive):
  // a peer that lost power or its link is declared gone after ~11 s of silence.
  if (code === "ETIMEDOUT") return "the peer stopped answering (connection timed out, ETIMEDOUT)";
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    const reason = (error as { cause?: unknown }).cause;
    return `no answer in time (${reason instanceof Error ? reason.message : error.message})`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
