import { z } from "zod";

/**
 * Potluck's own, API-neutral form of a chat request. The OpenAI routes, the Ollama routes and the
 * MCP server each translate their wire format into this; the router carries it unchanged to the
 * machine that serves it (`/peer/infer`), and the engine runs it. One shape, so a field honoured
 * on one API is honoured on every API and on every machine.
 */
export const GenerationLimits = {
  toolsMax: 128,
  toolNameCharsMax: 64,
  toolCallsMax: 32,
  /** A tool's JSON schema, or a response schema, serialized. */
  schemaCharsMax: 64_000,
  stopMax: 4,
  stopCharsMax: 256,
  /** A hard bound on a reply; the engine also stops at the end of the model's context. */
  maxTokensMax: 1_048_576,
} as const;

const JsonSchema = z
  .record(z.string(), z.unknown())
  .refine((schema) => JSON.stringify(schema).length <= GenerationLimits.schemaCharsMax, {
    message: `a JSON schema of at most ${GenerationLimits.schemaCharsMax} characters`,
  });

/** A function the model may call: OpenAI's `function` and Ollama's `tools[].function` alike. */
export const ToolSpec = z.object({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, _ and - only")
    .max(GenerationLimits.toolNameCharsMax),
  description: z.string().max(4_096).optional(),
  /** JSON schema of the arguments object; absent: the function takes no arguments. */
  parameters: JsonSchema.optional(),
});
export type ToolSpec = z.infer<typeof ToolSpec>;

/** One call the model made. `arguments` is JSON text (an object), as OpenAI carries it. */
export const ToolCall = z.object({
  id: z.string().min(1).max(128),
  name: z.string().min(1).max(GenerationLimits.toolNameCharsMax),
  arguments: z.string().max(GenerationLimits.schemaCharsMax),
});
export type ToolCall = z.infer<typeof ToolCall>;

export const ToolChoice = z.union([
  z.enum(["auto", "none", "required"]),
  z.object({ name: z.string().min(1).max(GenerationLimits.toolNameCharsMax) }),
]);
export type ToolChoice = z.infer<typeof ToolChoice>;

/** Output constrained by a grammar: any JSON object, or JSON matching a schema. */
export const ResponseFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({ type: z.literal("json_schema"), schema: JsonSchema, name: z.string().max(256).optional() }),
]);
export type ResponseFormat = z.infer<typeof ResponseFormat>;

/**
 * A message after translation: content is text (OpenAI's content parts are joined; `developer`
 * is `system`). An assistant turn may carry the calls it made, a `tool` turn answers one of them.
 */
export const ChatMessage = z.object({
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: z.string().max(64_000),
  toolCalls: z.array(ToolCall).max(GenerationLimits.toolCallsMax).optional(),
  toolCallId: z.string().max(128).optional(),
  /** The function a `tool` message answers, where the client says so (Ollama's `tool_name`). */
  name: z.string().max(GenerationLimits.toolNameCharsMax).optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/**
 * Sampling and output controls, every one honoured by the engine. Absent means the API's default
 * (temperature 1 for OpenAI, 0.8 for Ollama: the translator fills in its API's default).
 */
export const GenerationOptions = z.object({
  /** Absent: until end of sequence or the end of the context. */
  maxTokens: z.number().int().positive().max(GenerationLimits.maxTokensMax).optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().gt(0).max(1).optional(),
  topK: z.number().int().nonnegative().max(1_000).optional(),
  seed: z.number().int().optional(),
  stop: z.array(z.string().min(1).max(GenerationLimits.stopCharsMax)).max(GenerationLimits.stopMax).optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  /** Ollama's repeat_penalty (1 = off). */
  repeatPenalty: z.number().min(0).max(10).optional(),
  tools: z.array(ToolSpec).max(GenerationLimits.toolsMax).optional(),
  toolChoice: ToolChoice.optional(),
  responseFormat: ResponseFormat.optional(),
  /**
   * How long the model stays loaded after this request, in ms (Ollama's keep_alive); -1 forever,
   * 0 unload at once. Absent: the machine's POTLUCK_KEEP_ALIVE.
   */
  keepAliveMs: z.number().int().min(-1).optional(),
});
export type GenerationOptions = z.infer<typeof GenerationOptions>;

/** Why a reply ended: the API translators map these onto their own words. */
export const FinishReason = z.enum(["stop", "length", "tool_calls"]);
export type FinishReason = z.infer<typeof FinishReason>;
