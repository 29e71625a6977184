import {
  ChatMessage,
  legacyCompletionMaxTokensDefault,
  PotluckHttpError,
  SidecarLimits,
  type ChatCompletionRequest,
  type CompletionRequest,
  type GenerationOptions,
  type OpenAiMessage,
  type ResponseFormat,
  type ToolCall,
  type ToolChoice,
  type ToolSpec,
} from "@potluck/protocol";
import { enforceableSchema, SchemaError } from "../../inference/json-schema-check.js";

/**
 * OpenAI's wire request → the shared contract (protocol/generation.ts), in one place. Defaults are
 * OpenAI's: temperature 1 and no cap on a chat reply (until end of sequence or the context); 16
 * tokens for a legacy completion. What the schema let through but cannot be honoured as a whole
 * (a tool message answering no call, a named tool that is not offered) is a 400 naming the field.
 */
export interface Translated {
  messages: ChatMessage[];
  options: GenerationOptions;
}

/** OpenAI's default sampling temperature (the engine's own default is greedy). */
export const openAiTemperatureDefault = 1;

export function fromChatRequest(body: ChatCompletionRequest): Translated {
  const tools = body.tools?.map((t): ToolSpec => ({
    name: t.function.name,
    ...(t.function.description == null ? {} : { description: t.function.description }),
    ...(t.function.parameters == null ? {} : { parameters: t.function.parameters }),
  }));
  const names = new Set<string>();
  tools?.forEach((t, i) => {
    if (names.has(t.name)) invalid(`tools.${i}.function.name`, `${t.name} is offered twice; tool names must be unique`);
    names.add(t.name);
  });
  tools?.forEach((t, i) => enforceable(t.parameters, `tools.${i}.function.parameters`));
  const toolChoice = toolChoiceOf(body.tool_choice, names);
  const responseFormat = responseFormatOf(body.response_format);
  const choosing = tools !== undefined && tools.length > 0 && (toolChoice === undefined || toolChoice === "auto");
  if (choosing && responseFormat !== undefined)
    invalid(
      "response_format",
      "cannot be combined with tools under tool_choice auto on this runtime (node-llama-cpp takes either " +
        "functions or a grammar); force the call (required or a named function) or drop one of them",
    );
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  return {
    messages: messagesOf(body.messages),
    options: {
      ...sampling(body),
      ...(maxTokens == null ? {} : { maxTokens }),
      ...(tools === undefined || tools.length === 0 ? {} : { tools }),
      ...(toolChoice === undefined ? {} : { toolChoice }),
      ...(responseFormat === undefined ? {} : { responseFormat }),
    },
  };
}

export function fromCompletionRequest(body: CompletionRequest): Translated {
  const prompt = typeof body.prompt === "string" ? body.prompt : (body.prompt[0] ?? "");
  return {
    messages: [{ role: "user", content: prompt }],
    options: { ...sampling(body), maxTokens: body.max_tokens ?? legacyCompletionMaxTokensDefault },
  };
}

/** What chat and legacy requests share: sampling and stop. */
function sampling(body: ChatCompletionRequest | CompletionRequest): GenerationOptions {
  const stop = body.stop == null ? undefined : typeof body.stop === "string" ? [body.stop] : body.stop;
  return {
    temperature: body.temperature ?? openAiTemperatureDefault,
    ...(body.top_p == null ? {} : { topP: body.top_p }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(stop === undefined || stop.length === 0 ? {} : { stop }),
    ...(body.presence_penalty == null ? {} : { presencePenalty: body.presence_penalty }),
    ...(body.frequency_penalty == null ? {} : { frequencyPenalty: body.frequency_penalty }),
  };
}

function toolChoiceOf(choice: ChatCompletionRequest["tool_choice"], names: Set<string>): ToolChoice | undefined {
  if (choice == null) return undefined;
  if (typeof choice === "string") {
    if (choice === "required" && names.size === 0)
      invalid("tool_choice", "required needs tools to choose from; send tools");
    return choice;
  }
  const name = choice.function.name;
  if (!names.has(name))
    invalid(
      "tool_choice.function.name",
      `${name} is not among the tools (${[...names].join(", ") || "none sent"}); name one of them`,
    );
  return { name };
}

function responseFormatOf(format: ChatCompletionRequest["response_format"]): ResponseFormat | undefined {
  if (format == null || format.type === "text") return undefined;
  if (format.type === "json_object") return { type: "json_object" };
  const { schema, name } = format.json_schema;
  // No schema: any JSON object, as json_object.
  if (schema == null) return { type: "json_object" };
  enforceable(schema, "response_format.json_schema.schema");
  return { type: "json_schema", schema, name };
}

/**
 * A schema the runtime's grammar cannot enforce is refused here, before routing: a peer would
 * refuse it too, and the router would report that as "no machine can serve" instead of a 400.
 */
function enforceable(schema: unknown, param: string): void {
  if (schema === undefined) return;
  try {
    enforceableSchema(schema, param);
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw new PotluckHttpError(400, "invalid_request", error.message, error.path);
  }
}

/**
 * Messages in the shared form: content parts joined, `developer` as `system`, an assistant's
 * tool calls and a tool message's call id carried. A tool message must answer a call an earlier
 * assistant turn made (OpenAI refuses it otherwise too); it also gets that call's function name.
 */
function messagesOf(messages: readonly OpenAiMessage[]): ChatMessage[] {
  const calls = new Map<string, string>();
  return messages.map((m, i): ChatMessage => {
    const content = contentOf(m.content, `messages.${i}.content`);
    if (m.role === "system" || m.role === "developer" || m.role === "user")
      return { role: m.role === "developer" ? "system" : m.role, content };
    if (m.role === "assistant") {
      const toolCalls = (m.tool_calls ?? []).map((c): ToolCall => {
        calls.set(c.id, c.function.name);
        return { id: c.id, name: c.function.name, arguments: c.function.arguments };
      });
      const text = content.length > 0 ? content : (m.refusal ?? "");
      return { role: "assistant", content: text, ...(toolCalls.length > 0 ? { toolCalls } : {}) };
    }
    const name = calls.get(m.tool_call_id);
    if (name === undefined)
      invalid(
        `messages.${i}.tool_call_id`,
        `${m.tool_call_id} answers no tool call of an earlier assistant message; send the assistant's tool_calls first`,
      );
    return { role: "tool", content, toolCallId: m.tool_call_id, name };
  });
}

/** A string, or text parts joined by newlines (the schema has already refused any other part). */
function contentOf(content: OpenAiMessage["content"], field: string): string {
  const text =
    content == null
      ? ""
      : typeof content === "string"
        ? content
        : content.map((part) => (part.type === "refusal" ? String(part.refusal) : (part.text ?? ""))).join("\n");
  if (text.length > SidecarLimits.messageCharsMax)
    invalid(field, `at most ${SidecarLimits.messageCharsMax} characters of text (the parts joined)`);
  return text;
}

function invalid(param: string, message: string): never {
  throw new PotluckHttpError(400, "invalid_request", `${param}: ${message}`, param);
}
