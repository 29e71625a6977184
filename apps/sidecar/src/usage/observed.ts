import type { ChatMessage, InferStreamChunk } from "@potluck/protocol";

export type DoneChunk = Extract<InferStreamChunk, { type: "done" }>;

/**
 * The requester's side of a billed job: what this machine itself saw, so a serving peer cannot
 * size the bill by what it reports. The peer's done chunk only says how many tokens it claims;
 * the spend is the smaller of that claim and what this machine can vouch for.
 */
export const ObservedLimits = {
  /**
   * Chat-template tokens a model may add per message (role markers, separators). Generous, so an
   * honest peer's count always fits: it only has to stop a report of millions.
   */
  templateTokensPerMessageMax: 32,
  /** Template tokens for the whole prompt (a default system prompt, the reply's opening). */
  templateTokensMax: 512,
} as const;

/** What the requester counted on the stream so far. */
export interface StreamCount {
  /** UTF-8 bytes of reply text received. */
  textBytes: number;
}

/**
 * Passes chunks through, counting the reply text (and tool calls) this machine really received. Every token a
 * byte-level or SentencePiece tokenizer emits decodes to at least one byte, so the bytes bound the
 * completion tokens from above (the peer never strips text: empty chunks are the only ones left out).
 */
export async function* countingStream(
  chunks: AsyncIterable<InferStreamChunk>,
  count: StreamCount,
): AsyncGenerator<InferStreamChunk> {
  for await (const chunk of chunks) {
    if (chunk.type === "token") count.textBytes += Buffer.byteLength(chunk.text, "utf8");
    // A call's tokens were generated as its name and arguments: they bound its tokens the same way.
    else if (chunk.type === "tool_call")
      count.textBytes += Buffer.byteLength(chunk.call.name, "utf8") + Buffer.byteLength(chunk.call.arguments, "utf8");
    yield chunk;
  }
}

/**
 * An upper bound on the prompt tokens of `messages` under any chat template: every token covers at
 * least one byte of the text, plus the template's own tokens.
 */
export function promptTokensMax(messages: readonly ChatMessage[]): number {
  const textBytes = messages.reduce((sum, m) => sum + Buffer.byteLength(m.content, "utf8"), 0);
  return textBytes + messages.length * ObservedLimits.templateTokensPerMessageMax + ObservedLimits.templateTokensMax;
}

export interface TokenBounds {
  /** The request's max_tokens: no peer may bill more completion tokens than were asked for. Absent: no cap. */
  maxTokens?: number;
  /** `promptTokensMax` of the request's messages. */
  promptTokensMax: number;
  /** The context the peer published for the model before the job, when it said. */
  contextSize?: number;
}

export interface BoundedUsage {
  promptTokens: number;
  completionTokens: number;
  /** Set when the peer reported more than this machine can vouch for: what it said and what was billed. */
  dispute?: string;
}

/**
 * The tokens the requester pays for: the peer's report, clamped to what this machine observed
 * (reply bytes received, the request's max_tokens, the published context) and to its own prompt
 * estimate. An honest report is never above these bounds, so it is billed exactly as reported.
 */
export function boundedUsage(done: DoneChunk, count: StreamCount, bounds: TokenBounds): BoundedUsage {
  const context = bounds.contextSize ?? Number.MAX_SAFE_INTEGER;
  const completionMax = Math.min(bounds.maxTokens ?? Number.MAX_SAFE_INTEGER, count.textBytes, context);
  const promptMax = Math.min(bounds.promptTokensMax, context);
  const reported = done.usage;
  const completionTokens = Math.min(reported.completionTokens, completionMax);
  const promptTokens = Math.min(reported.promptTokens, promptMax);
  if (completionTokens === reported.completionTokens && promptTokens === reported.promptTokens)
    return { promptTokens, completionTokens };
  const dispute =
    `reported ${reported.promptTokens} prompt + ${reported.completionTokens} completion tokens; ` +
    `this machine observed at most ${promptMax} prompt + ${completionMax} completion ` +
    `(max_tokens ${bounds.maxTokens ?? "none"}, ${count.textBytes} reply bytes received), so it billed ${promptTokens} + ${completionTokens}`;
  return { promptTokens, completionTokens, dispute };
}
