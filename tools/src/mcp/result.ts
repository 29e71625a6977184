import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { messageOf } from "@potluck/service";

/** A tool's answer: words for the model reading it, and the same facts as data for a program. */
export function answer(text: string, data?: Record<string, unknown>): CallToolResult {
  return {
    content: [{ type: "text", text }],
    ...(data === undefined ? {} : { structuredContent: data }),
  };
}

/**
 * Runs a tool body; whatever it throws (the sidecar's refusal, an unreachable sidecar, a timeout)
 * becomes an error result the client shows the model, never a failed JSON-RPC call or a dead server.
 */
export async function guarded(body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await body();
  } catch (error) {
    return { isError: true, content: [{ type: "text", text: messageOf(error) }] };
  }
}
