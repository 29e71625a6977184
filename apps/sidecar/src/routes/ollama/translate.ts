import {
  GenerationLimits,
  keepAliveMs,
  PotluckHttpError,
  type ChatMessage,
  type GenerationOptions,
  type OllamaChatRequest,
  type OllamaGenerateRequest,
  type OllamaMessage,
  type OllamaOptions,
  type OllamaToolCall,
  type ResponseFormat,
  type ToolCall,
} from "@potluck/protocol";

/**
 * Ollama's wire format to Potluck's API-neutral generation contract (libs/protocol generation.ts),
 * the one the router carries to whichever machine serves the job. Everything the schema accepted
 * either maps onto a field here or changes nothing (see OllamaOptions), so nothing is dropped.
 */

/** Ollama's defaults where a client sends no value (api/types.go DefaultOptions). */
export const ollamaDefaults = { temperature: 0.8, topP: 0.9, topK: 40, repeatPenalty: 1.1 } as const;

export interface Translated {
  messages: ChatMessage[];
  options: GenerationOptions;
}

export function chatToGeneration(body: OllamaChatRequest): Translated {
  return {
    messages: chatMessages(body.messages ?? []),
    options: {
      ...generationOptions(body.options, body.format, body.keep_alive),
      ...(body.tools == null || body.tools.length === 0 ? {} : { tools: body.tools.map((t) => t.function) }),
    },
  };
}

export function generateToGeneration(body: OllamaGenerateRequest): Translated {
  const messages: ChatMessage[] = [];
  if (body.system != null && body.system.length > 0) messages.push({ role: "system", content: body.system });
  messages.push({ role: "user", content: body.prompt ?? "" });
  return { messages, options: generationOptions(body.options, body.format, body.keep_alive) };
}

/** The options every generation carries; Ollama's defaults fill what the client left out. */
export function generationOptions(
  options: OllamaOptions | null | undefined,
  format: OllamaChatRequest["format"],
  keepAlive: OllamaChatRequest["keep_alive"],
): GenerationOptions {
  const o = options ?? {};
  const stop = o.stop == null ? [] : typeof o.stop === "string" ? [o.stop] : o.stop;
  const responseFormat = formatOf(format);
  const keep = keepAlive == null ? undefined : keepAliveMs(keepAlive);
  return {
    // -1 (no limit) and -2 (fill the context) both run to the end of the context here.
    ...(o.num_predict != null && o.num_predict > 0 ? { maxTokens: o.num_predict } : {}),
    temperature: o.temperature ?? ollamaDefaults.temperature,
    topP: o.top_p ?? ollamaDefaults.topP,
    topK: o.top_k ?? ollamaDefaults.topK,
    repeatPenalty: o.repeat_penalty ?? ollamaDefaults.repeatPenalty,
    // Ollama's -1 means "pick one at random", which is what no seed does.
    ...(o.seed != null && o.seed >= 0 ? { seed: o.seed } : {}),
    ...(stop.length > 0 ? { stop } : {}),
    ...(o.presence_penalty != null ? { presencePenalty: o.presence_penalty } : {}),
    ...(o.frequency_penalty != null ? { frequencyPenalty: o.frequency_penalty } : {}),
    ...(responseFormat === undefined ? {} : { responseFormat }),
    ...(keep === undefined ? {} : { keepAliveMs: keep }),
  };
}

/** "json": any JSON object; a schema: JSON matching it; "" or absent: text. */
export function formatOf(format: OllamaChatRequest["format"]): ResponseFormat | undefined {
  if (format == null || format === "") return undefined;
  if (format === "json") return { type: "json_object" };
  return { type: "json_schema", schema: format };
}

/**
 * Ollama's messages carry no call ids (newer clients may): each assistant call gets one, and a
 * `tool` message answers the earliest unanswered call of its `tool_name` (else the earliest
 * unanswered call), so the engine sees the same pairing OpenAI clients state outright.
 */
export function chatMessages(messages: readonly OllamaMessage[]): ChatMessage[] {
  const open: ToolCall[] = [];
  return messages.map((m, index) => {
    const content = m.content ?? "";
    if (m.role === "assistant" && m.tool_calls != null && m.tool_calls.length > 0) {
      const toolCalls = m.tool_calls.map((call, n) => toolCallOf(call, `call_${index}_${n}`, index, n));
      open.push(...toolCalls);
      return { role: "assistant", content, toolCalls };
    }
    if (m.role !== "tool") return { role: m.role, content };
    const name = m.tool_name ?? undefined;
    const byId = m.tool_call_id == null ? -1 : open.findIndex((call) => call.id === m.tool_call_id);
    const byName = name === undefined ? -1 : open.findIndex((call) => call.name === name);
    const at = byId >= 0 ? byId : byName >= 0 ? byName : open.length > 0 ? 0 : -1;
    const answered = at >= 0 ? open.splice(at, 1)[0] : undefined;
    const toolCallId = m.tool_call_id ?? answered?.id;
    const answers = name ?? answered?.name;
    return {
      role: "tool",
      content,
      ...(toolCallId === undefined ? {} : { toolCallId }),
      ...(answers === undefined ? {} : { name: answers }),
    };
  });
}

function toolCallOf(call: OllamaToolCall, fallbackId: string, message: number, n: number): ToolCall {
  const args = call.function.arguments;
  const text = args == null ? "{}" : typeof args === "string" ? args : JSON.stringify(args);
  const field = `messages.${message}.tool_calls.${n}.function.arguments`;
  if (typeof args === "string" && !isJsonObject(args))
    throw new PotluckHttpError(400, "invalid_request", `${field}: expected a JSON object`, field);
  if (text.length > GenerationLimits.schemaCharsMax)
    throw new PotluckHttpError(
      400,
      "invalid_request",
      `${field}: at most ${GenerationLimits.schemaCharsMax} characters of JSON`,
      field,
    );
  return { id: call.id ?? fallbackId, name: call.function.name, arguments: text };
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** The engine's call (arguments as JSON text) as Ollama's `tool_calls` entry (arguments as an object). */
export function ollamaToolCall(call: ToolCall): { id: string; function: { name: string; arguments: object } } {
  let args: unknown;
  try {
    args = JSON.parse(call.arguments);
  } catch {
    args = undefined;
  }
  if (typeof args !== "object" || args === null || Array.isArray(args))
    throw new Error(`the model's call to ${call.name} has arguments that are not a JSON object`);
  return { id: call.id, function: { name: call.name, arguments: args } };
}

/** Names Ollama clients send with the default tag ("tiny:latest") find a model listed without one. */
export function resolveModelName(name: string, known: (id: string) => boolean): string {
  // The suffix first: asking the engine builds a model's whole view, on every prompt's path.
  if (!name.endsWith(":latest") || known(name)) return name;
  const bare = name.slice(0, -":latest".length);
  return known(bare) ? bare : name;
}
