import { footer } from "../reply-parts.js";
import { performance } from "node:perf_hooks";
import { PotluckHttpError, type InferStreamChunk, type ToolCall } from "@potluck/protocol";
import type { PlannedRoute } from "../../routing/router.js";
import { ollamaToolCall } from "./translate.js";
import { chunkHttpError } from "../../routing/chunk-errors.js";

/**
 * Potluck's infer stream as Ollama's replies: NDJSON lines while streaming, one object otherwise.
 * /api/chat puts text in `message.content`, /api/generate in `response`; the last object carries
 * done_reason, token counts and durations (nanoseconds, as Ollama reports them), and Potluck's
 * footer as extra fields (`served_by`, `potluck`), as on the OpenAI routes.
 */
export type ReplyKind = "chat" | "generate";

type Done = Extract<InferStreamChunk, { type: "done" }>;

/**
 * When the phases of one reply happened, for Ollama's durations: loading (from the first loading
 * chunk until the model answers), the prompt (until the first token), generation (until the end).
 */
export class ReplyClock {
  private loadStartMs: number | undefined;
  private loadEndMs: number | undefined;
  private firstOutputMs: number | undefined;

  constructor(private readonly startMs = performance.now()) {}

  observe(chunk: InferStreamChunk): void {
    const now = performance.now();
    if (chunk.type === "loading") {
      this.loadStartMs ??= now;
      return;
    }
    if (this.loadStartMs !== undefined) this.loadEndMs ??= now;
    if (chunk.type === "token" || chunk.type === "tool_call") this.firstOutputMs ??= now;
  }

  durations(): Record<string, number> {
    const end = performance.now();
    const ns = (ms: number) => Math.max(0, Math.round(ms * 1e6));
    const promptFrom = this.loadEndMs ?? this.startMs;
    const firstOutput = this.firstOutputMs ?? end;
    return {
      total_duration: ns(end - this.startMs),
      load_duration: ns((this.loadEndMs ?? 0) - (this.loadStartMs ?? 0)),
      prompt_eval_duration: ns(firstOutput - promptFrom),
      eval_duration: ns(end - firstOutput),
    };
  }
}

export interface ReplyContext {
  kind: ReplyKind;
  /** The name the client asked for, echoed as Ollama does. */
  model: string;
  route: PlannedRoute;
  clock: ReplyClock;
}

/**
 * One NDJSON line per chunk. A token line is the same for the whole reply but for the time and the
 * text, so it is two string joins and one JSON.stringify of the text.
 */
export function ndjsonEncoder(reply: ReplyContext): (chunk: InferStreamChunk) => string | undefined {
  const model = JSON.stringify(reply.model);
  const textField = reply.kind === "chat" ? `"message":{"role":"assistant","content":` : `"response":`;
  const textEnd = reply.kind === "chat" ? `},"done":false}\n` : `,"done":false}\n`;
  return (chunk) => {
    if (chunk.type !== "loading") reply.clock.observe(chunk);
    if (chunk.type === "token") {
      if (chunk.text.length === 0) return undefined;
      return `{"model":${model},"created_at":"${new Date().toISOString()}",${textField}${JSON.stringify(chunk.text)}${textEnd}`;
    }
    if (chunk.type === "loading") return undefined;
    if (chunk.type === "error") return line({ error: errorText(chunk) });
    if (chunk.type === "tool_call") {
      // Ollama streams each call in a message of its own, with empty content.
      const toolCall = toolCallOrError(chunk.call);
      if ("error" in toolCall) return line(toolCall);
      return line({ ...head(reply), message: { role: "assistant", content: "", tool_calls: [toolCall] }, done: false });
    }
    return line(final(reply, chunk, ""));
  };
}

/** The whole reply as one object (`stream: false`). */
export async function collectReply(chunks: AsyncIterable<InferStreamChunk>, reply: ReplyContext) {
  let text = "";
  const calls: ToolCall[] = [];
  for await (const chunk of chunks) {
    reply.clock.observe(chunk);
    if (chunk.type === "token") text += chunk.text;
    else if (chunk.type === "tool_call") calls.push(chunk.call);
    else if (chunk.type === "error") throw chunkHttpError(chunk, errorText(chunk));
    else if (chunk.type === "done") {
      const body = final(reply, chunk, text);
      if (calls.length === 0) return body;
      const toolCalls = calls.map(toolCallOrError);
      const bad = toolCalls.find((call) => "error" in call);
      if (bad !== undefined && "error" in bad) throw new PotluckHttpError(502, "bad_tool_call", bad.error);
      return { ...body, message: { role: "assistant", content: text, tool_calls: toolCalls } };
    }
  }
  throw new PotluckHttpError(
    502,
    "stream_incomplete",
    `${reply.route.choice.machine} ended the reply without a final chunk`,
  );
}

function head(reply: ReplyContext) {
  return { model: reply.model, created_at: new Date().toISOString() };
}

function final(reply: ReplyContext, chunk: Done, text: string) {
  const output = reply.kind === "chat" ? { message: { role: "assistant", content: text } } : { response: text };
  return {
    ...head(reply),
    ...output,
    done: true,
    // Ollama says "stop" for a reply that ended in tool calls too.
    done_reason: chunk.finishReason === "length" ? "length" : "stop",
    ...reply.clock.durations(),
    prompt_eval_count: chunk.usage.promptTokens,
    eval_count: chunk.usage.completionTokens,
    served_by: chunk.servedBy,
    potluck: footer(chunk, reply.route),
  };
}

function toolCallOrError(call: ToolCall): ReturnType<typeof ollamaToolCall> | { error: string } {
  try {
    return ollamaToolCall(call);
  } catch (error) {
    return { error: (error as Error).message };
  }
}

function errorText(chunk: Extract<InferStreamChunk, { type: "error" }>): string {
  return chunk.layer === undefined ? chunk.message : `${chunk.layer}: ${chunk.message}`;
}

function line(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}
