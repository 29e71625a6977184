import type { InferStreamChunk, ToolCall } from "@potluck/protocol";
import type { PlannedRoute } from "../../routing/router.js";
import { streamError, usageOf } from "./job.js";
import { footer } from "../reply-parts.js";

/** What every chunk of one reply repeats. */
export interface Meta {
  id: string;
  created: number;
  model: string;
}

export const sseHeaders = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };
export const sseTrailer = "data: [DONE]\n\n";

/**
 * Load progress as an SSE comment line: shown by anyone reading the raw stream, skipped by every
 * client's SSE parser (a line starting with ":"), so it cannot break one.
 */
export function loadingComment(chunk: Extract<InferStreamChunk, { type: "loading" }>): string {
  return `: potluck loading ${chunk.model} ${Math.round(chunk.progress * 100)}%\n\n`;
}

/**
 * Encodes chunks as OpenAI's chat.completion.chunk events. Everything in a token event but its
 * text is the same for the whole reply, so it is serialized once and each token costs one
 * JSON.stringify of a string. The first delta carries the role, as OpenAI's does. A tool call is
 * two deltas as OpenAI streams them: its id and name (arguments ""), then its arguments. With
 * stream_options.include_usage a last event with no choices carries the usage.
 */
export function chatEncoder(
  route: PlannedRoute,
  meta: Meta,
  includeUsage: boolean,
): (chunk: InferStreamChunk) => string | undefined {
  const base = { ...meta, object: "chat.completion.chunk" };
  const head = `data: ${JSON.stringify(base).slice(0, -1)},"choices":[{"index":0,"delta":{`;
  const tail = `},"finish_reason":null}]}\n\n`;
  let roleSent = false;
  let callIndex = 0;
  const role = () => {
    if (roleSent) return "";
    roleSent = true;
    return `"role":"assistant",`;
  };
  return (chunk) => {
    if (chunk.type === "token")
      return chunk.text.length === 0 ? undefined : `${head}${role()}"content":${JSON.stringify(chunk.text)}${tail}`;
    if (chunk.type === "loading") return loadingComment(chunk);
    if (chunk.type === "tool_call") return toolCallDeltas(head, tail, role(), chunk.call, callIndex++);
    if (chunk.type === "error") return sse(streamError(chunk));
    const final = sse({
      ...base,
      choices: [{ index: 0, delta: {}, finish_reason: chunk.finishReason }],
      usage: usageOf(chunk),
      served_by: chunk.servedBy,
      potluck: footer(chunk, route),
    });
    if (!includeUsage) return final;
    return (
      final +
      sse({ ...base, choices: [], usage: usageOf(chunk), served_by: chunk.servedBy, potluck: footer(chunk, route) })
    );
  };
}

function toolCallDeltas(head: string, tail: string, role: string, call: ToolCall, index: number): string {
  const opening = { index, id: call.id, type: "function", function: { name: call.name, arguments: "" } };
  const args = { index, function: { arguments: call.arguments } };
  return (
    `${head}${role}"content":null,"tool_calls":${JSON.stringify([opening])}${tail}` +
    `${head}"tool_calls":${JSON.stringify([args])}${tail}`
  );
}

/** The legacy text_completion events: the text of each token, then the finish reason. */
export function completionEncoder(
  route: PlannedRoute,
  meta: Meta,
  includeUsage: boolean,
): (chunk: InferStreamChunk) => string | undefined {
  const base = { ...meta, object: "text_completion" };
  const head = `data: ${JSON.stringify(base).slice(0, -1)},"choices":[{"index":0,"text":`;
  const tail = `,"logprobs":null,"finish_reason":null}]}\n\n`;
  return (chunk) => {
    if (chunk.type === "token") return chunk.text.length === 0 ? undefined : head + JSON.stringify(chunk.text) + tail;
    if (chunk.type === "loading") return loadingComment(chunk);
    if (chunk.type === "tool_call") return undefined;
    if (chunk.type === "error") return sse(streamError(chunk));
    const final = {
      ...base,
      choices: [{ index: 0, text: "", logprobs: null, finish_reason: chunk.finishReason }],
      usage: usageOf(chunk),
      served_by: chunk.servedBy,
      potluck: footer(chunk, route),
    };
    return sse(final) + (includeUsage ? sse({ ...final, choices: [] }) : "");
  };
}

export function sse(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}
