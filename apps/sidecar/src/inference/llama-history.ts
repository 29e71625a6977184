import type { ChatMessage } from "@potluck/protocol";
import type { ChatHistoryItem, ChatModelFunctionCall } from "node-llama-cpp";

/**
 * The shared messages as node-llama-cpp's chat history. An assistant turn's tool calls become the
 * model's function calls, and a `tool` message becomes the result of the call it answers (by id,
 * else by function name, else the oldest unanswered one), so the chat template renders calls and
 * results the way the model was trained to see them. A tool message that answers nothing is kept
 * as a user turn rather than dropped. Ends with the empty model turn the reply fills.
 */
export function chatHistoryOf(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  // Calls made by the latest assistant turn that still wait for their results.
  let pending: Array<{ id: string; item: ChatModelFunctionCall; answered: boolean }> = [];
  for (const m of messages) {
    if (m.role === "tool") {
      const open = pending.filter((p) => !p.answered);
      const target =
        open.find((p) => m.toolCallId !== undefined && p.id === m.toolCallId) ??
        open.find((p) => m.name !== undefined && p.item.name === m.name) ??
        open[0];
      if (target !== undefined) {
        target.item.result = parsedOrText(m.content);
        target.answered = true;
      } else {
        history.push({ type: "user", text: `Result of ${m.name ?? "a tool call"}: ${m.content}` });
      }
      continue;
    }
    pending = [];
    if (m.role === "assistant") {
      const response: Array<string | ChatModelFunctionCall> = m.content.length > 0 ? [m.content] : [];
      for (const call of m.toolCalls ?? []) {
        const item: ChatModelFunctionCall = {
          type: "functionCall",
          name: call.name,
          params: parsedOrText(call.arguments),
          result: null,
        };
        response.push(item);
        pending.push({ id: call.id, item, answered: false });
      }
      history.push({ type: "model", response });
    } else {
      history.push({ type: m.role, text: m.content });
    }
  }
  history.push({ type: "model", response: [] });
  return history;
}

/** JSON text as its value (arguments and results are JSON by convention), anything else as the text. */
function parsedOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
