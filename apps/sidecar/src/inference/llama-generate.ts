import { randomUUID } from "node:crypto";
import type { ChatHistoryItem, ChatModelFunctions, LlamaChat, LlamaGrammar } from "node-llama-cpp";
import type { FinishReason, ToolCall } from "@potluck/protocol";
import { Channel } from "./channel.js";
import { EngineError, type EngineEvent, type GenerateRequest } from "./engine.js";
import { chatHistoryOf } from "./llama-history.js";
import {
  checkedSchema,
  forcedCallInstruction,
  forcedCallSchema,
  grammarForFormat,
  grammarForSchema,
} from "./llama-grammar.js";

/**
 * How a reply is produced: plain text (optionally under a response-format grammar), the model
 * free to call functions (node-llama-cpp's function calling, `auto`), or a call it must make
 * (`required` or a named function: a grammar that only admits a call).
 */
type Mode =
  | { kind: "text"; grammar?: LlamaGrammar }
  | { kind: "functions"; functions: ChatModelFunctions }
  | { kind: "forced"; grammar: LlamaGrammar };

/**
 * node-llama-cpp's failure when the prompt itself (history, tools, system text) cannot be made to
 * fit the context, as the client's error: a 400 on `messages`, OpenAI's context_length_exceeded,
 * never a 500. Matched by its message: node-llama-cpp 3.x throws a plain Error for it.
 */
function promptTooLong(error: unknown, contextSize: number): EngineError | undefined {
  if (
    !(error instanceof Error) ||
    !/fits the context size|context size is too small|too long prompt/i.test(error.message)
  )
    return undefined;
  return new EngineError(
    400,
    "context_length_exceeded",
    `messages: the prompt (its messages, tools and system text) does not fit in the model's context of ${contextSize} tokens; shorten it or raise the context`,
    { cause: error },
  );
}

/**
 * One chat reply on a loaded chat (the engine holds the model's queue slot while this runs).
 * Every option of the request is honoured or refused here before the first token. Without
 * maxTokens the reply runs until end of sequence or until the context is full, never past it:
 * node-llama-cpp would otherwise shift the context and generate on forever.
 */
export async function* generateReply(chat: LlamaChat, request: GenerateRequest): AsyncGenerator<EngineEvent> {
  const history = chatHistoryOf(request.messages);
  const mode = await modeOf(chat, request, history);
  const contextSize = chat.context.contextSize;
  const channel = new Channel<string>();
  let completionTokens = 0;
  let promptTokens: number | undefined;
  let contextFull = false;
  const abort = new AbortController();
  const onAbort = () => abort.abort(request.signal?.reason);
  request.signal?.addEventListener("abort", onAbort, { once: true });
  const penalties = request.presencePenalty ?? request.frequencyPenalty ?? request.repeatPenalty;
  const done = chat
    .generateResponse(history, {
      ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
      temperature: request.temperature ?? 0,
      seed: request.seed,
      topP: request.topP,
      topK: request.topK,
      repeatPenalty:
        penalties === undefined
          ? false
          : {
              penalty: request.repeatPenalty ?? 1,
              presencePenalty: request.presencePenalty ?? 0,
              frequencyPenalty: request.frequencyPenalty ?? 0,
            },
      ...(request.stop === undefined ? {} : { customStopTriggers: request.stop }),
      ...(mode.kind === "functions"
        ? { functions: mode.functions, documentFunctionParams: true }
        : mode.grammar === undefined
          ? {}
          : { grammar: mode.grammar }),
      signal: abort.signal,
      stopOnAbortSignal: true,
      onToken: (tokens) => {
        // When the first token arrives the sequence holds exactly the evaluated prompt.
        promptTokens ??= chat.sequence.nextTokenIndex;
        completionTokens += tokens.length;
        if (chat.sequence.nextTokenIndex >= contextSize - 1) {
          contextFull = true;
          abort.abort(new Error("the context is full"));
        }
      },
      // A forced call's text is the call itself, reported as a tool call at the end, not as content.
      onTextChunk: (text) => channel.push(text),
    })
    .catch((error: unknown) => {
      throw promptTooLong(error, contextSize) ?? error;
    })
    .finally(() => channel.end());
  try {
    let forcedText = "";
    for await (const texts of channel.batches(request.batchWindowMs ?? 0)) {
      const text = texts.join("");
      if (mode.kind === "forced") forcedText += text;
      else yield { type: "token", text };
    }
    const result = await done;
    const stopReason = result.metadata.stopReason;
    const calls =
      mode.kind === "forced"
        ? forcedCall(forcedText)
        : (result.functionCalls ?? []).map((call) => toolCall(call.functionName, call.params));
    if (mode.kind === "forced" && calls.length === 0 && forcedText.length > 0)
      yield { type: "token", text: forcedText };
    for (const call of calls) yield { type: "tool_call", call };
    // Rendering and tokenizing the prompt a second time costs as much as a few tokens; only a
    // reply without a single token needs it.
    promptTokens ??= chat.chatWrapper
      .generateContextState({ chatHistory: history })
      .contextText.tokenize(chat.model.tokenizer).length;
    // onToken misses a token node-llama-cpp holds back as a possible stop trigger and then drops at
    // the limit; stopping at maxTokens means its own count of generated tokens reached the limit.
    if (stopReason === "maxTokens" && request.maxTokens !== undefined)
      completionTokens = Math.max(completionTokens, request.maxTokens);
    const finishReason: FinishReason =
      calls.length > 0 ? "tool_calls" : stopReason === "maxTokens" || contextFull ? "length" : "stop";
    yield { type: "done", finishReason, usage: { promptTokens, completionTokens } };
  } finally {
    // The consumer may stop early (client gone): stop the runtime before freeing the slot.
    abort.abort(new Error("consumer stopped reading"));
    await done.catch(() => undefined);
    request.signal?.removeEventListener("abort", onAbort);
  }
}

/** Picks the mode and builds its grammar; a schema the grammar cannot express is a 400 here. */
async function modeOf(chat: LlamaChat, request: GenerateRequest, history: ChatHistoryItem[]): Promise<Mode> {
  const llama = chat.model.llama;
  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? "auto";
  if (tools.length === 0 || choice === "none")
    return { kind: "text", grammar: await grammarForFormat(llama, request.responseFormat) };
  if (choice === "auto") {
    if (request.responseFormat !== undefined && request.responseFormat.type !== "text")
      throw new EngineError(
        400,
        "invalid_request",
        "tools with tool_choice auto cannot be combined with a JSON response format on this runtime " +
          "(node-llama-cpp takes either functions or a grammar); force the call or drop one of them",
      );
    const functions: Record<string, ChatModelFunctions[string]> = {};
    for (const tool of tools) {
      functions[tool.name] = {
        ...(tool.description === undefined ? {} : { description: tool.description }),
        ...(tool.parameters === undefined
          ? {}
          : { params: checkedSchema(tool.parameters, `tool ${tool.name} parameters`) }),
      };
    }
    return { kind: "functions", functions };
  }
  const named = choice === "required" ? undefined : choice.name;
  const allowed = named === undefined ? tools : tools.filter((t) => t.name === named);
  if (allowed.length === 0)
    throw new EngineError(400, "invalid_request", `tool choice names ${named}, which is not among the tools`);
  instruct(history, forcedCallInstruction(allowed));
  return { kind: "forced", grammar: await grammarForSchema(llama, forcedCallSchema(allowed), "tool parameters") };
}

/** Adds an instruction to the system turn (creating one first when the chat has none). */
function instruct(history: ChatHistoryItem[], text: string): void {
  const first = history[0];
  if (first?.type === "system") first.text = `${first.text}\n\n${text}`;
  else history.unshift({ type: "system", text });
}

/** The call a forced reply made; none when the reply was cut short (by max tokens) mid-call. */
function forcedCall(text: string): ToolCall[] {
  try {
    const value = JSON.parse(text) as { name?: unknown; arguments?: unknown };
    return typeof value.name === "string" ? [toolCall(value.name, value.arguments ?? {})] : [];
  } catch {
    return [];
  }
}

function toolCall(name: string, params: unknown): ToolCall {
  return { id: `call_${randomUUID().replaceAll("-", "")}`, name, arguments: JSON.stringify(params ?? {}) };
}
