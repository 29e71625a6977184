import { PotluckHttpError, type InferStreamChunk, type ToolCall } from "@potluck/protocol";
import type { PlannedRoute } from "../../routing/router.js";
import { chunkHttpError } from "../../routing/chunk-errors.js";

export interface Reply {
  text: string;
  calls: ToolCall[];
  done: Extract<InferStreamChunk, { type: "done" }>;
}

/** A whole reply for a non-streaming answer: its text, its tool calls, and the final chunk. */
export async function collectReply(chunks: AsyncIterable<InferStreamChunk>, route: PlannedRoute): Promise<Reply> {
  let text = "";
  const calls: ToolCall[] = [];
  for await (const chunk of chunks) {
    if (chunk.type === "token") text += chunk.text;
    else if (chunk.type === "tool_call") calls.push(chunk.call);
    else if (chunk.type === "loading") continue;
    else if (chunk.type === "error") throw chunkHttpError(chunk);
    else return { text, calls, done: chunk };
  }
  throw new PotluckHttpError(502, "stream_incomplete", `${route.choice.machine} ended the reply without a final chunk`);
}
