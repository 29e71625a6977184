import { randomUUID } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Capabilities, FwReapplyResult, FwStatus, Health, InferStreamChunk, ModelInfo, ProbeResponse, Roster, type RosterEntry } from "@potluck/protocol";
import { z as zod } from "zod";
import type { z } from "zod";
import { DiagnosticsLimits } from "./limits.js";
import { classifyNetworkError, ProbeError, ProbeErrorKind, type CoordinatorProbe, type FirewallProbe, type LocalProbe, type PeerClient, type PeerTarget, type RosterSource, type SelfClient } from "./probes.js";

/** Adds a peer request's signature headers (machine id, timestamp, nonce, signature). */
export type RequestSigner = (request: { method: string; path: string; body: string }) => Record<string, string> | Promise<Record<string, string>>;

export interface HttpPeerClientOptions {
  /** Who asks, for /peer/infer's `requester`. */
  requester: { machine: string; owner: string };
  sign?: RequestSigner;
  fetch?: typeof fetch;
}

/** The prompt of the first-token probe: short, so one token costs almost nothing. */
const firstTokenPrompt = "Reply with one word.";

/** The peer sidecar over HTTP: the same path a routed prompt takes. */
export function httpPeerClient({ requester, sign, fetch: fetchImpl = fetch }: HttpPeerClientOptions): PeerClient {
  const probeAgents = { small: probeAgent(), large: probeAgent() };
  const call = async (target: PeerTarget, method: "GET" | "POST", path: string, body: unknown, signal: AbortSignal) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    const headers: Record<string, string> = body === undefined ? {} : { "content-type": "application/json" };
    if (sign !== undefined) Object.assign(headers, await sign({ method, path, body: text }));
    const init: RequestInit = { method, headers, signal };
    if (body !== undefined) init.body = text;
    return send(fetchImpl, `http://${target.host}:${target.port}${path}`, init);
  };
  return {
    async nudge(target, signal) {
      await fetchImpl(`http://${target.host}:${target.port}/health`, { signal }).then((res) => res.body?.cancel(), () => undefined);
    },
    async probe(target, bytes, signal) {
      // Printable bytes so the payload's size on the wire equals `bytes` inside the JSON string.
      const payload = "p".repeat(bytes);
      const body = JSON.stringify({ payload });
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (sign !== undefined) Object.assign(headers, await sign({ method: "POST", path: "/peer/probe", body }));
      const text = await postProbe(bytes <= DiagnosticsLimits.smallProbeBytes ? probeAgents.small : probeAgents.large, target, "/peer/probe", headers, body, signal);
      const echo = parseJson(text, ProbeResponse);
      if (echo.payload !== payload) throw new ProbeError(ProbeErrorKind.invalid, `probe echo differs: sent ${bytes} bytes, got ${echo.payload.length}`);
    },
    async capabilities(target, signal) {
      const res = await call(target, "GET", "/peer/capabilities", undefined, signal);
      return readJson(res, Capabilities, signal);
    },
    async firstToken(target, model, signal) {
      const request = { jobId: `diag-${randomUUID()}`, model, messages: [{ role: "user", content: firstTokenPrompt }], maxTokens: 1, temperature: 0, requester };
      const res = await call(target, "POST", "/peer/infer", request, signal);
      return readFirstToken(res, target.name);
    },
  };
}

/** The local fw-watcher on loopback. Nothing listening means no watcher here: nothing to consult. */
export function httpFirewallProbe({ url, fetch: fetchImpl = fetch }: { url: string; fetch?: typeof fetch }): FirewallProbe {
  return {
    async status(signal) {
      try {
        // A fresh read: the watcher's cached one can be a whole (long) interval old.
        const res = await send(fetchImpl, `${url}/status?fresh=1`, { signal });
        return await readJson(res, FwStatus, signal);
      } catch (error) {
        if (error instanceof ProbeError && error.kind === ProbeErrorKind.refused) return null;
        throw error;
      }
    },
    async reapply(signal) {
      const res = await send(fetchImpl, `${url}/reapply`, {
        method: "POST", signal, headers: { "content-type": "application/json" },
        body: JSON.stringify({ consent: true, requestedBy: "potluck diagnostics" }),
      });
      return (await readJson(res, FwReapplyResult, signal)).status;
    },
  };
}

export function httpCoordinatorProbe({ url, fetch: fetchImpl = fetch }: { url: string; fetch?: typeof fetch }): CoordinatorProbe {
  const base = url.replace(/\/+$/, "");
  return {
    url: base,
    async health(signal) {
      const res = await send(fetchImpl, `${base}/health`, { signal });
      await res.body?.cancel();
    },
  };
}

/** The roster as the coordinator serves it (GET /v1/roster). */
export function httpRosterSource({ url, headers = {}, fetch: fetchImpl = fetch }: { url: string; headers?: Record<string, string>; fetch?: typeof fetch }): RosterSource {
  const base = url.replace(/\/+$/, "");
  const list = async (signal: AbortSignal): Promise<RosterEntry[]> => {
    const res = await send(fetchImpl, `${base}/v1/roster`, { signal, headers });
    return (await readJson(res, Roster, signal)).machines;
  };
  return { list, lookup: async (name, signal) => (await list(signal)).find((m) => m.name === name) ?? null };
}

/** GET /v1/models as the sidecar answers it: OpenAI's list with Potluck's model state alongside. */
const LocalModels = zod.object({
  data: zod.array(zod.object({
    id: zod.string(),
    potluck: zod.object({ state: ModelInfo.shape.state, progress: zod.number().min(0).max(1).optional(), reason: zod.string().optional(), test_model: zod.boolean() }),
  })),
});
const LocalCompletion = zod.object({ served_by: zod.string().optional(), choices: zod.array(zod.object({ message: zod.object({ content: zod.string().nullable() }) })) });

/** This machine's model path through its own OpenAI-compatible API (loopback). */
export function httpSelfClient({ url, machine, fetch: fetchImpl = fetch }: { url: string; machine: string; fetch?: typeof fetch }): SelfClient {
  return {
    async models(signal) {
      const res = await send(fetchImpl, `${url}/v1/models`, { signal });
      return (await readJson(res, LocalModels, signal)).data.map((m) => {
        const info: ModelInfo = { id: m.id, state: m.potluck.state, testModel: m.potluck.test_model };
        if (m.potluck.progress !== undefined) info.progress = m.potluck.progress;
        if (m.potluck.reason !== undefined) info.reason = m.potluck.reason;
        return info;
      });
    },
    async firstToken(model, signal) {
      const body = { model, messages: [{ role: "user", content: firstTokenPrompt }], max_tokens: 1, temperature: 0, stream: false, potluck: { on: machine } };
      const res = await send(fetchImpl, `${url}/v1/chat/completions`, { method: "POST", signal, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const answer = await readJson(res, LocalCompletion, signal);
      return { text: answer.choices[0]?.message.content ?? "", servedBy: answer.served_by ?? machine };
    },
  };
}

/** This machine's sidecar over loopback, for the CLI (the sidecar answers itself in-process). */
export function httpLocalProbe({ url, fetch: fetchImpl = fetch }: { url: string; fetch?: typeof fetch }): LocalProbe {
  return {
    async health(signal) {
      const res = await send(fetchImpl, `${url}/health`, { signal });
      return readJson(res, Health, signal);
    },
  };
}

/** fetch, with network failures classified and HTTP errors turned into `ProbeError`s naming the status. */
async function send(fetchImpl: typeof fetch, url: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetchImpl(url, init);
  } catch (error) {
    throw classifyNetworkError(error);
  }
  if (res.ok) return res;
  const text = await readText(res, init.signal ?? undefined).catch(() => "");
  throw httpError(res.status, text, new URL(url).pathname);
}

/**
 * Probe connections, kept alive, one pool per probe size. A probe must test the path as it is now:
 * on a connection shared with larger exchanges (capabilities, a first token, the large probe), a
 * segment an MTU black hole ate sits unacknowledged ahead of the small probe, TCP delivers nothing
 * behind it, and the small probe times out as if a firewall dropped it. A small-probe connection
 * only ever carries small segments, so it cannot be stuck behind a large one; a large probe that
 * times out is aborted and its connection destroyed. Keep-alive (rather than a connection per
 * probe) saves two TCP handshakes per check, a measurable share of a healthy check.
 */
function probeAgent(): HttpAgent {
  // Concurrent checks of one path share a run (see Diagnostics), so a few sockets a peer is plenty.
  return new HttpAgent({ keepAlive: true, maxSockets: probeSocketsPerPeerMax, maxFreeSockets: probeSocketsPerPeerMax });
}

const probeSocketsPerPeerMax = 4;

function postProbe(agent: HttpAgent, target: PeerTarget, path: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: target.host, port: target.port, path, method: "POST", agent, signal, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      let received = 0;
      res.on("data", (chunk: Buffer) => {
        received += chunk.byteLength;
        if (received > DiagnosticsLimits.responseBytesMax) {
          req.destroy(new ProbeError(ProbeErrorKind.invalid, `answer exceeds ${DiagnosticsLimits.responseBytesMax} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("error", (error) => reject(signal.aborted ? timedOut(error) : classifyNetworkError(error)));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(text);
        else reject(httpError(status, text, path));
      });
    });
    req.on("error", (error) => reject(error instanceof ProbeError ? error : signal.aborted ? timedOut(error) : classifyNetworkError(error)));
    req.end(body);
  });
}

const timedOut = (cause: unknown) => new ProbeError(ProbeErrorKind.timeout, "no answer within the time budget", undefined, { cause });

/** An HTTP error status as a `ProbeError`, keeping the protocol's error code and message when the body has them. */
function httpError(status: number, text: string, path: string): ProbeError {
  let code: string | undefined;
  let message: string | undefined;
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    code = parsed.error?.code;
    message = parsed.error?.message;
  } catch {
    message = text.slice(0, 200) || undefined;
  }
  const http: { status: number; code?: string; message?: string } = { status };
  if (code !== undefined) http.code = code;
  if (message !== undefined) http.message = message;
  return new ProbeError(ProbeErrorKind.http, `HTTP ${status} from ${path}`, http);
}

async function readJson<S extends z.ZodType>(res: Response, schema: S, signal?: AbortSignal): Promise<z.infer<S>> {
  return parseJson(await readText(res, signal), schema);
}

function parseJson<S extends z.ZodType>(text: string, schema: S): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProbeError(ProbeErrorKind.invalid, `answer is not JSON: ${text.slice(0, 80)}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ProbeError(ProbeErrorKind.invalid, `answer does not match the protocol: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

/** Reads a body up to `responseBytesMax`; a timeout mid-body counts as a timeout (lost packets). */
async function readText(res: Response, signal?: AbortSignal): Promise<string> {
  try {
    const buffer = await res.arrayBuffer();
    if (buffer.byteLength > DiagnosticsLimits.responseBytesMax) throw new ProbeError(ProbeErrorKind.invalid, `answer exceeds ${DiagnosticsLimits.responseBytesMax} bytes`);
    return new TextDecoder().decode(buffer);
  } catch (error) {
    if (error instanceof ProbeError) throw error;
    if (signal?.aborted === true) throw new ProbeError(ProbeErrorKind.timeout, "the answer stopped arriving within the time budget", undefined, { cause: error });
    throw classifyNetworkError(error);
  }
}

/** Reads NDJSON chunks until the first token; an error chunk or a stream without a token fails. */
async function readFirstToken(res: Response, peer: string): Promise<{ text: string; servedBy: string }> {
  const reader = res.body?.getReader();
  if (reader === undefined) throw new ProbeError(ProbeErrorKind.invalid, "empty answer from /peer/infer");
  const decoder = new TextDecoder();
  let buffered = "";
  let received = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
      if (received > DiagnosticsLimits.responseBytesMax) throw new ProbeError(ProbeErrorKind.invalid, "infer stream exceeded its byte budget before a token");
      buffered += decoder.decode(value, { stream: true });
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const chunk = parseChunk(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        if (chunk?.type === "token") return { text: chunk.text, servedBy: peer };
        if (chunk?.type === "done") return { text: "", servedBy: chunk.servedBy };
        if (chunk?.type === "error") throw new ProbeError(ProbeErrorKind.http, `infer error ${chunk.code}: ${chunk.message}`, { status: chunk.code === "model_loading" ? 503 : 500, code: chunk.code, message: chunk.message });
        newline = buffered.indexOf("\n");
      }
    }
  } catch (error) {
    throw error instanceof ProbeError ? error : classifyNetworkError(error);
  } finally {
    void reader.cancel().catch(() => undefined);
  }
  throw new ProbeError(ProbeErrorKind.invalid, "the infer stream ended without a token");
}

function parseChunk(line: string): InferStreamChunk | undefined {
  if (line.trim().length === 0) return undefined;
  try {
    const parsed = InferStreamChunk.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
