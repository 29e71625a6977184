import {
  PeerCallError,
  PeerClient,
  PeerErrorKind,
  coordinatorRoster,
  fileRoster,
  type PeerAddress,
  type PeerRoster,
  type RequestSigner,
} from "@potluck/peer";
import {
  ChatCompletionResponse,
  FwReapplyResult,
  FwStatus,
  Health,
  ModelListResponse,
  type ModelInfo,
} from "@potluck/protocol";
import type { z } from "zod";
import { DiagnosticsLimits } from "./limits.js";
import {
  classifyNetworkError,
  ProbeError,
  ProbeErrorKind,
  type CoordinatorProbe,
  type FirewallProbe,
  type LocalProbe,
  type PeerClient as PeerProbeClient,
  type PeerTarget,
  type RosterSource,
  type SelfClient,
} from "./probes.js";

export interface HttpPeerClientOptions {
  /** Who asks, for /peer/infer's `requester`. */
  requester: { machine: string; owner: string };
  /**
   * The peer client to probe through: the sidecar passes the one its router uses, so a probe and
   * the diagnosis of its failure travel the same pools. Without one, a client signing with `sign`.
   */
  client?: PeerClient;
  sign?: RequestSigner;
}

/** The prompt of the first-token probe: short, so one token costs almost nothing. */
const firstTokenPrompt = "Reply with one word.";

/**
 * The peer sidecar through libs/peer's client: the same calls, pools and error classification a
 * routed prompt uses. Every failure is a `ProbeError` of the kind the client named.
 */
export function httpPeerClient({ requester, client, sign = () => ({}) }: HttpPeerClientOptions): PeerProbeClient {
  const peer = client ?? new PeerClient({ sign });
  return {
    nudge: (target, signal) => peer.nudge(addressOf(target), signal),
    probe: (target, bytes, signal) =>
      probeErrors(async () => void (await peer.probe(addressOf(target), { bytes, signal }))),
    capabilities: (target, signal) => probeErrors(() => peer.capabilities(addressOf(target), signal)),
    firstToken: (target, model, signal) =>
      probeErrors(async () => {
        const request = {
          model,
          messages: [{ role: "user" as const, content: firstTokenPrompt }],
          maxTokens: 1,
          temperature: 0,
          requester,
        };
        const chunk = await peer.firstChunk(addressOf(target), request, signal);
        // A first token or a first tool call both prove the model generates.
        if (chunk.type === "token") return { text: chunk.text, servedBy: target.name };
        if (chunk.type === "loading") throw new Error("unreachable: firstChunk skips load progress");
        if (chunk.type === "tool_call") return { text: chunk.call.arguments, servedBy: target.name };
        if (chunk.type === "done") return { text: "", servedBy: chunk.servedBy };
        const status = chunk.code === "model_loading" ? 503 : 500;
        throw new ProbeError(ProbeErrorKind.http, `infer error ${chunk.code}: ${chunk.message}`, {
          status,
          code: chunk.code,
          message: chunk.message,
        });
      }),
  };
}

/** Diagnostics' view of the one roster source (libs/peer): cached, re-read on change. */
export function peerRosterSource(roster: PeerRoster): RosterSource {
  return {
    list: (signal) =>
      withSignal(
        roster.entries().then((entries) => [...entries]),
        signal,
      ),
    lookup: async (name, signal) => {
      const entry = await withSignal(roster.lookup(name), signal);
      return entry?.name === name ? entry : null;
    },
  };
}

/** The roster as the coordinator serves it (GET /v1/roster), through libs/peer's cached source. */
export function httpRosterSource({ url }: { url: string }): RosterSource {
  return peerRosterSource(coordinatorRoster({ url }));
}

/** A roster kept in a file in the coordinator's `Roster` schema (a static mesh, or the lab). */
export function fileRosterSource(path: string): RosterSource {
  return peerRosterSource(fileRoster({ path }));
}

/** The local fw-watcher on loopback. Nothing listening means no watcher here: nothing to consult. */
export function httpFirewallProbe({
  url,
  fetch: fetchImpl = fetch,
}: {
  url: string;
  fetch?: typeof fetch;
}): FirewallProbe {
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
        method: "POST",
        signal,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ consent: true, requestedBy: "potluck diagnostics" }),
      });
      return (await readJson(res, FwReapplyResult, signal)).status;
    },
  };
}

export function httpCoordinatorProbe({
  url,
  fetch: fetchImpl = fetch,
}: {
  url: string;
  fetch?: typeof fetch;
}): CoordinatorProbe {
  const base = url.replace(/\/+$/, "");
  return {
    url: base,
    async health(signal) {
      const res = await send(fetchImpl, `${base}/health`, { signal });
      await res.body?.cancel();
    },
  };
}

/** This machine's model path through its own OpenAI-compatible API (loopback). */
export function httpSelfClient({
  url,
  machine,
  fetch: fetchImpl = fetch,
}: {
  url: string;
  machine: string;
  fetch?: typeof fetch;
}): SelfClient {
  return {
    async models(signal) {
      const res = await send(fetchImpl, `${url}/v1/models`, { signal });
      return (await readJson(res, ModelListResponse, signal)).data.map((m) => {
        const info: ModelInfo = { id: m.id, state: m.potluck.state, testModel: m.potluck.test_model };
        if (m.potluck.progress !== undefined) info.progress = m.potluck.progress;
        if (m.potluck.reason !== undefined) info.reason = m.potluck.reason;
        return info;
      });
    },
    async firstToken(model, signal) {
      const body = {
        model,
        messages: [{ role: "user", content: firstTokenPrompt }],
        max_tokens: 1,
        temperature: 0,
        stream: false,
        potluck: { on: machine },
      };
      const res = await send(fetchImpl, `${url}/v1/chat/completions`, {
        method: "POST",
        signal,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await readJson(res, ChatCompletionResponse, signal);
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
  if (!parsed.success)
    throw new ProbeError(
      ProbeErrorKind.invalid,
      `answer does not match the protocol: ${parsed.error.issues[0]?.message ?? "invalid"}`,
    );
  return parsed.data;
}

/** Reads a body up to `responseBytesMax`; a timeout mid-body counts as a timeout (lost packets). */
async function readText(res: Response, signal?: AbortSignal): Promise<string> {
  try {
    const buffer = await res.arrayBuffer();
    if (buffer.byteLength > DiagnosticsLimits.responseBytesMax)
      throw new ProbeError(ProbeErrorKind.invalid, `answer exceeds ${DiagnosticsLimits.responseBytesMax} bytes`);
    return new TextDecoder().decode(buffer);
  } catch (error) {
    if (error instanceof ProbeError) throw error;
    if (signal?.aborted === true)
      throw new ProbeError(ProbeErrorKind.timeout, "the answer stopped arriving within the time budget", undefined, {
        cause: error,
      });
    throw classifyNetworkError(error);
  }
}

/** Where libs/peer's client reaches a probe target. */
function addressOf(target: PeerTarget): PeerAddress {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  return { machine: target.name, url: `http://${host}:${target.port}` };
}

/** Runs a peer call, turning its `PeerCallError` into the `ProbeError` of the same kind. */
async function probeErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof PeerCallError)) throw classifyNetworkError(error);
    if (error.kind !== PeerErrorKind.http) throw new ProbeError(error.kind, error.message, undefined, { cause: error });
    const http: { status: number; code?: string; message?: string } = { status: error.status ?? 0 };
    if (error.code !== undefined) http.code = error.code;
    if (error.serverMessage !== undefined) http.message = error.serverMessage;
    throw new ProbeError(ProbeErrorKind.http, error.message, http, { cause: error });
  }
}

/** A roster read bounded by the check's budget: the cached source may be waiting on its first read. */
function withSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new ProbeError(ProbeErrorKind.timeout, "no answer within the time budget"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new ProbeError(ProbeErrorKind.timeout, "no answer within the time budget"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
