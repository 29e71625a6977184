import type { ResponseFormat, ToolSpec } from "@potluck/protocol";
import type { GbnfJsonSchema, Llama, LlamaGrammar } from "node-llama-cpp";
import { EngineError } from "./engine.js";
import { enforceableSchema } from "./json-schema-check.js";

/** Compiled grammars kept per runtime; a client repeats the same schema request after request. */
const grammarsMax = 64;
const cache = new WeakMap<Llama, Map<string, Promise<LlamaGrammar>>>();

/**
 * The grammar for a JSON schema, compiled once per runtime and schema text. A schema the grammar
 * cannot enforce is the client's error (a 400 naming `what` and the keyword), found before any token.
 */
export async function grammarForSchema(llama: Llama, schema: unknown, what: string): Promise<LlamaGrammar> {
  const checked = checkedSchema(schema, what);
  const key = JSON.stringify(checked);
  const grammars = cache.get(llama) ?? new Map<string, Promise<LlamaGrammar>>();
  cache.set(llama, grammars);
  let grammar = grammars.get(key);
  if (grammar === undefined) {
    grammar = llama.createGrammarForJsonSchema(checked as Readonly<GbnfJsonSchema> as never);
    grammars.set(key, grammar);
    if (grammars.size > grammarsMax) grammars.delete(grammars.keys().next().value as string);
  }
  try {
    return await grammar;
  } catch (error) {
    grammars.delete(key);
    throw refused(what, error);
  }
}

/** The schema as the grammar compiler takes it (see json-schema-check.ts), or a 400 naming the keyword. */
export function checkedSchema(schema: unknown, what: string): GbnfJsonSchema {
  try {
    return enforceableSchema(schema) as GbnfJsonSchema;
  } catch (error) {
    throw refused(what, error);
  }
}

function refused(what: string, error: unknown): EngineError {
  const reason = error instanceof Error ? error.message : String(error);
  return new EngineError(400, "invalid_request", `${what}: cannot be enforced by the runtime's grammar: ${reason}`, {
    cause: error,
  });
}

/** The grammar a response format asks for; undefined for plain text. */
export async function grammarForFormat(
  llama: Llama,
  format: ResponseFormat | undefined,
): Promise<LlamaGrammar | undefined> {
  if (format === undefined || format.type === "text") return undefined;
  if (format.type === "json_object") return await llama.getGrammarFor("json");
  return await grammarForSchema(llama, format.schema, "response schema");
}

/** A tool's arguments schema as the grammar compiler takes it: no schema means an object of anything. */
export function argumentsSchema(tool: ToolSpec): Record<string, unknown> {
  return tool.parameters ?? { type: "object", additionalProperties: true };
}

/**
 * A forced call (tool_choice required or named): the reply is one JSON object naming one of the
 * allowed functions and giving its arguments, under a grammar, so even a small model's output is
 * a well-formed call. node-llama-cpp's own function calling only lets the model choose to call.
 */
export function forcedCallSchema(tools: readonly ToolSpec[]): Record<string, unknown> {
  const calls = tools.map((tool) => ({
    type: "object",
    properties: { name: { const: tool.name }, arguments: argumentsSchema(tool) },
    required: ["name", "arguments"],
    additionalProperties: false,
  }));
  return calls.length === 1 ? (calls[0] as Record<string, unknown>) : { oneOf: calls };
}

/** The instruction that tells the model what a forced call may name, so its arguments make sense. */
export function forcedCallInstruction(tools: readonly ToolSpec[]): string {
  const lines = tools.map((t) => {
    const description = t.description === undefined ? "" : `: ${t.description}`;
    return `- ${t.name}${description}; arguments: ${JSON.stringify(argumentsSchema(t))}`;
  });
  return [
    'Answer with exactly one function call as JSON: {"name": <function>, "arguments": {...}}. Functions:',
    ...lines,
  ].join("\n");
}
