import { randomUUID } from "node:crypto";
import { Agent, type IncomingMessage } from "node:http";
import {
  Capabilities,
  ErrorBody,
  MemorySearchResponse,
  ProbeResponse,
  type InferStreamChunk,
  type LayerCode,
  type PeerInferRequest,
  type PeerMemorySearchRequest,
  type ProbeModel,
  type ProbeRequest,
} from "@potluck/protocol";
import { ndjsonChunks, readText, send, socketErrors } from "./http-io.js";
import { PeerClientLimits, ProbeSizes } from "./limits.js";
import { classifyNetworkError } from "./network-error.js";
import { PeerCallError, PeerErrorKind } from "./peer-error.js";
import type { RequestSigner } from "./signing.js";

/** Where another machine's sidecar answers: its name and the base URL of its peer port over the mesh. */
export interface PeerAddress {
  machine: string;
  /** e.g. http://100.64.0.3:8321 */
  url: string;
}

/** Kept-alive connection pools, one per kind of traffic (see `peerAgents`). */
export interface PeerAgents {
  /** Probes of `ProbeSizes.smallBytes` or less. */
  small: Agent;
  /** Larger probes. */
  large: Agent;
  /** Streams, capabilities, memory search and nudges. */
  stream: Agent;
}

/**
 * A probe must test the path as it is now. On a connection shared with larger exchanges, a
 * segment an MTU black hole ate sits unacknowledged ahead of a small probe, TCP delivers nothing
 * behind it, and the small probe times out as if a firewall dropped it; on a connection shared
 * with a stream, a probe could sit behind that stream's lost segment. So small probes, large
 * probes and everything else have pools of their own; a probe that times out is aborted and its
 * connection destroyed. Keep-alive (rather than a connection per call) saves two TCP handshakes
 * per call, a measurable share of a healthy check (BENCHMARKS.md).
 */
export function peerAgents(): PeerAgents {
  const probe = () =>
    new Agent({
      keepAlive: true,
      maxSockets: PeerClientLimits.probeSocketsPerPeerMax,
      maxFreeSockets: PeerClientLimits.probeSocketsPerPeerMax,
    });
  return {
    small: probe(),
    large: probe(),
    stream: new Agent({
      keepAlive: true,
      maxSockets: PeerClientLimits.streamSocketsPerPeerMax,
      maxFreeSockets: PeerClientLimits.probeSocketsPerPeerMax,
    }),
  };
}

export interface PeerClientOptions {
  /** Signs every /peer/* request with this machine's identity. */
  sign: RequestSigner;
  /** Tests pass their own to watch the connections. */
  agents?: PeerAgents;
}

/**
 * The one client for other sidecars' /peer/* API, used by routing, diagnostics and fleet memory
 * search: signed, on node:http with kept-alive pools, every answer bounded and validated with the
 * protocol's schemas, every failure a `PeerCallError` named by `classifyNetworkError`. Not fetch:
 * a signed probe over the mesh costs about twice the CPU through fetch (undici and its web
 * streams) as through node:http (BENCHMARKS.md), taken from the model that serves the reply.
 */
export class PeerClient {
  readonly agents: PeerAgents;
  private readonly sign: RequestSigner;

  constructor({ sign, agents = peerAgents() }: PeerClientOptions) {
    this.sign = sign;
    this.agents = agents;
  }

  /**
   * POST /peer/probe with `bytes` of payload (`ProbeSizes.largeBytes` unless given); the data
   * plane is good only if it comes back intact. With `model`, the answer also says that model's
   * state there (undefined when the peer's version predates that; ask its capabilities instead).
   */
  async probe(
    peer: PeerAddress,
    options: { bytes?: number; model?: string; signal?: AbortSignal } = {},
  ): Promise<{ latencyMs: number; model?: ProbeModel }> {
    const bytes = options.bytes ?? ProbeSizes.largeBytes;
    // Printable bytes, so the payload's size on the wire equals `bytes` inside the JSON string.
    const payload = "p".repeat(bytes);
    const request: ProbeRequest = options.model === undefined ? { payload } : { payload, model: options.model };
    const agent = bytes <= ProbeSizes.smallBytes ? this.agents.small : this.agents.large;
    const signal = options.signal ?? AbortSignal.timeout(PeerClientLimits.probeTimeoutMs);
    const started = performance.now();
    const res = await this.call(agent, peer, "POST", "/peer/probe", JSON.stringify(request), signal);
    const body = ProbeResponse.safeParse(await readJson(res, peer, signal));
    if (!body.success || body.data.payload !== payload) {
      throw new PeerCallError(
        "data-plane",
        `${peer.machine} echoed a different probe payload (${bytes} bytes sent)`,
        undefined,
        { kind: PeerErrorKind.invalid },
      );
    }
    const latencyMs = performance.now() - started;
    return body.data.model === undefined ? { latencyMs } : { latencyMs, model: body.data.model };
  }

  async capabilities(
    peer: PeerAddress,
    signal: AbortSignal = AbortSignal.timeout(PeerClientLimits.probeTimeoutMs),
  ): Promise<Capabilities> {
    const res = await this.call(this.agents.stream, peer, "GET", "/peer/capabilities", "", signal);
    const body = Capabilities.safeParse(await readJson(res, peer, signal));
    if (!body.success)
      throw invalid(
        "capabilities",
        `${peer.machine} sent capabilities this version cannot read: ${body.error.issues[0]?.message ?? "invalid"}`,
      );
    return body.data;
  }

  /** POST /peer/memory/search; `signal` is the fleet deadline. */
  async memorySearch(
    peer: PeerAddress,
    body: PeerMemorySearchRequest,
    signal: AbortSignal,
  ): Promise<MemorySearchResponse> {
    const res = await this.call(this.agents.stream, peer, "POST", "/peer/memory/search", JSON.stringify(body), signal);
    const parsed = MemorySearchResponse.safeParse(await readJson(res, peer, signal));
    if (!parsed.success)
      throw invalid("capabilities", `malformed answer: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    return parsed.data;
  }

  /** Sends anything (an unsigned GET /health) so an idle tunnel starts a handshake; never throws. */
  async nudge(peer: PeerAddress, signal: AbortSignal): Promise<void> {
    try {
      const res = await send({
        url: `${peer.url}/health`,
        method: "GET",
        path: "/health",
        body: "",
        headers: () => ({}),
        agent: this.agents.stream,
        signal,
      });
      res.resume();
    } catch {
      // A nudge only has to leave this machine.
    }
  }

  /**
   * POST /peer/infer and yield its NDJSON chunks; a broken or silent stream ends with an error
   * chunk. A stream read to its end leaves its connection to the pool for the next call; one the
   * caller stops early is destroyed, which is how the peer learns to stop generating.
   */
  async *infer(peer: PeerAddress, request: PeerInferRequest, signal?: AbortSignal): AsyncGenerator<InferStreamChunk> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted === true) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const startTimer = setTimeout(
      () => controller.abort(new Error(`no response within ${PeerClientLimits.inferStartTimeoutMs / 1000} s`)),
      PeerClientLimits.inferStartTimeoutMs,
    );
    let tokens = 0;
    let res: IncomingMessage | undefined;
    let finished = false;
    try {
      res = await this.call(
        this.agents.stream,
        peer,
        "POST",
        "/peer/infer",
        JSON.stringify(request),
        controller.signal,
      );
      clearTimeout(startTimer);
      for await (const chunk of ndjsonChunks(res)) {
        // Load progress and tool calls come before the end: only done or error is the final chunk.
        if (chunk.type === "token") tokens++;
        else if (chunk.type === "done" || chunk.type === "error") finished = true;
        yield chunk;
        if (finished) return;
      }
      yield streamBroken(peer, tokens, "the connection closed before the final chunk");
    } catch (error) {
      if (error instanceof PeerCallError && tokens === 0) throw error;
      if (signal?.aborted === true) return;
      // The socket's own error says why (a keepalive timeout, a reset); the response only says "aborted".
      yield streamBroken(
        peer,
        tokens,
        classifyNetworkError((res === undefined ? undefined : socketErrors.get(res)) ?? error).message,
      );
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

  /**
   * A one-token POST /peer/infer that resolves at the first generated chunk (diagnostics'
   * first-token check; load progress is skipped): unlike `infer`, a stream that breaks is thrown
   * as the classified network failure.
   */
  async firstChunk(
    peer: PeerAddress,
    request: Omit<PeerInferRequest, "jobId"> & { jobId?: string },
    signal: AbortSignal,
  ): Promise<InferStreamChunk> {
    const body: PeerInferRequest = { ...request, jobId: request.jobId ?? `diag-${randomUUID()}` };
    const res = await this.call(this.agents.stream, peer, "POST", "/peer/infer", JSON.stringify(body), signal);
    try {
      for await (const chunk of ndjsonChunks(res)) if (chunk.type !== "loading") return chunk;
    } catch (error) {
      throw networkFailure(
        "first-token",
        `${peer.machine}: the infer stream broke`,
        socketErrors.get(res) ?? error,
        signal,
      );
    } finally {
      res.destroy();
    }
    throw invalid("first-token", `${peer.machine}: the infer stream ended without a chunk`);
  }

  private async call(
    agent: Agent,
    peer: PeerAddress,
    method: string,
    path: string,
    body: string,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    let res: IncomingMessage;
    try {
      res = await send({
        url: `${peer.url}${path}`,
        method,
        path,
        body,
        headers: () => this.sign({ method, path, body, target: peer.machine }),
        agent,
        signal,
      });
    } catch (error) {
      throw networkFailure("data-plane", `${method} ${peer.url}${path}`, error, signal);
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const text = await readText(res).catch(() => "");
    const parsed = parseErrorBody(text);
    const detail = parsed === undefined ? `HTTP ${status}` : `${parsed.code}: ${parsed.message}`;
    // 401: the peer does not know this machine's key; 503: its model or queue cannot take the job.
    const layer: LayerCode = status === 401 ? "roster" : status === 503 ? "model-runtime" : "capabilities";
    const options: { kind: PeerErrorKind; code?: string; serverMessage?: string } = { kind: PeerErrorKind.http };
    if (parsed !== undefined) Object.assign(options, { code: parsed.code, serverMessage: parsed.message });
    else if (text.length > 0) options.serverMessage = text.slice(0, 200);
    throw new PeerCallError(layer, `${peer.machine} refused ${method} ${path} (${status} ${detail})`, status, options);
  }
}

/**
 * A network failure as a `PeerCallError`; once the caller's signal fired, it is that timeout whatever the socket said.
 */
function networkFailure(layer: LayerCode, what: string, error: unknown, signal: AbortSignal): PeerCallError {
  const failure = classifyNetworkError(
    signal.aborted && (error as { name?: unknown } | null)?.name !== "AbortError"
      ? Object.assign(new Error("aborted"), { name: "AbortError", cause: signal.reason })
      : error,
  );
  return new PeerCallError(layer, `${what}: ${failure.message}`, undefined, { kind: failure.kind, cause: error });
}

function invalid(layer: LayerCode, message: string): PeerCallError {
  return new PeerCallError(layer, message, undefined, { kind: PeerErrorKind.invalid });
}

async function readJson(res: IncomingMessage, peer: PeerAddress, signal: AbortSignal): Promise<unknown> {
  let text: string;
  try {
    text = await readText(res);
  } catch (error) {
    const failure = networkFailure("data-plane", `${peer.machine}: response body lost mid-way`, error, signal);
    // The body's own bound is a broken answer, not a broken network.
    if (error instanceof Error && error.message.startsWith("answer exceeds"))
      throw invalid("data-plane", `${peer.machine}: ${error.message}`);
    throw failure;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw invalid("capabilities", `${peer.machine} answered with a body that is not JSON`);
  }
}

function parseErrorBody(text: string): { code: string; message: string } | undefined {
  try {
    const parsed = ErrorBody.safeParse(JSON.parse(text));
    return parsed.success ? { code: parsed.data.error.code, message: parsed.data.error.message } : undefined;
  } catch {
    return undefined;
  }
}

function streamBroken(peer: PeerAddress, tokens: number, reason: string): InferStreamChunk {
  return {
    type: "error",
    code: "peer_stream_broken",
    message: `${peer.machine} stopped streaming after ${tokens} token chunk(s): ${reason}`,
    layer: "data-plane",
  };
}
