import { z } from "zod";
import { MachineName } from "./common.js";
import { GenerationLimits } from "./generation.js";
import { SidecarLimits } from "./sidecar.js";

/**
 * OpenAI's chat and legacy completion requests as Potluck accepts them. Every object is strict:
 * a field that is not listed is a 400 naming it, because zod's default (strip) would silently
 * drop a field that changes the reply. Fields that change nothing a local runtime does (`user`,
 * `metadata`, `store`, …) are listed and accepted. OpenAI clients send `null` for "not set", so
 * optional fields are nullish. The translation into the shared contract is apps/sidecar's
 * routes/openai/translate.ts.
 */
export const OpenAiLimits = {
  contentPartsMax: 256,
  /** One legacy prompt; a list of several would be n completions, which is refused like n > 1. */
  promptsMax: 1,
} as const;

const notSupported = (what: string) =>
  z
    .unknown()
    .optional()
    .refine((v) => v === undefined || v === null, { message: what });

const text = z.string().max(SidecarLimits.messageCharsMax);

/**
 * A content part. Only text is understood; an image, audio or file part is refused by name since
 * the models Potluck runs read text only, and dropping the part would answer a different question.
 */
const ContentPart = z
  .object({ type: z.string().max(64), text: text.optional() })
  .passthrough()
  .superRefine((part, ctx) => {
    if (part.type === "text" || part.type === "refusal") {
      const key = part.type === "refusal" ? "refusal" : "text";
      const value = (part as Record<string, unknown>)[key];
      if (typeof value !== "string") ctx.addIssue({ code: "custom", path: [key], message: "a string is required" });
      return;
    }
    ctx.addIssue({
      code: "custom",
      path: ["type"],
      message: `${part.type} parts are not supported: the models Potluck runs read text only; send {type: "text"} parts`,
    });
  });
const Content = z.union([text, z.array(ContentPart).max(OpenAiLimits.contentPartsMax)]);

const WireToolCall = z.strictObject({
  id: z.string().min(1).max(128),
  type: z.literal("function"),
  function: z.strictObject({
    name: z.string().min(1).max(GenerationLimits.toolNameCharsMax),
    arguments: z.string().max(GenerationLimits.schemaCharsMax),
  }),
});

const name = z.string().max(GenerationLimits.toolNameCharsMax).nullish();

export const OpenAiMessage = z.discriminatedUnion("role", [
  z.strictObject({ role: z.literal("system"), content: Content, name }),
  z.strictObject({ role: z.literal("developer"), content: Content, name }),
  z.strictObject({ role: z.literal("user"), content: Content, name }),
  z.strictObject({
    role: z.literal("assistant"),
    content: Content.nullish(),
    name,
    refusal: z.string().max(SidecarLimits.messageCharsMax).nullish(),
    tool_calls: z.array(WireToolCall).max(GenerationLimits.toolCallsMax).nullish(),
    audio: notSupported("assistant audio is not supported: the models Potluck runs produce text only"),
    function_call: notSupported("the deprecated function_call is not supported; send tool_calls"),
  }),
  z.strictObject({ role: z.literal("tool"), content: Content, tool_call_id: z.string().min(1).max(128) }),
]);
export type OpenAiMessage = z.infer<typeof OpenAiMessage>;

const WireTool = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, _ and - only")
      .max(GenerationLimits.toolNameCharsMax),
    description: z.string().max(4_096).nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    /** Arguments always follow the schema here: they are generated under its grammar. */
    strict: z.boolean().nullish(),
  }),
});

export const OpenAiToolChoice = z.union([
  z.enum(["auto", "none", "required"]),
  z.strictObject({
    type: z.literal("function"),
    function: z.strictObject({ name: z.string().min(1).max(GenerationLimits.toolNameCharsMax) }),
  }),
]);

export const OpenAiResponseFormat = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    json_schema: z.strictObject({
      name: z.string().min(1).max(64),
      description: z.string().max(4_096).nullish(),
      schema: z.record(z.string(), z.unknown()).nullish(),
      /** Output always follows the schema here (a grammar), strict or not. */
      strict: z.boolean().nullish(),
    }),
  }),
]);

const Stop = z.union([
  z.string().min(1).max(GenerationLimits.stopCharsMax),
  z.array(z.string().min(1).max(GenerationLimits.stopCharsMax)).max(GenerationLimits.stopMax),
]);

const maxTokens = z.number().int().positive().max(GenerationLimits.maxTokensMax).nullish();

/** Fields every OpenAI request shares: sampling, limits, and what changes nothing here. */
const common = {
  model: z.string().min(1).max(256),
  stream: z.boolean().nullish(),
  stream_options: z
    .strictObject({ include_usage: z.boolean().nullish(), include_obfuscation: z.boolean().nullish() })
    .nullish(),
  max_tokens: maxTokens,
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).nullish(),
  stop: Stop.nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  n: z
    .number()
    .int()
    .nullish()
    .refine((n) => n === undefined || n === null || n === 1, {
      message: "only 1 is supported: a local runtime generates one choice per request; send n: 1 or leave it out",
    }),
  logprobs: z
    .union([z.boolean(), z.number().int()])
    .nullish()
    .refine((v) => v === undefined || v === null || v === false || v === 0, {
      message:
        "not supported: node-llama-cpp 3.21.1 exposes token probabilities only to raw sequence evaluation, not to " +
        "the chat generation (grammars, function calling) Potluck runs; leave logprobs out",
    }),
  logit_bias: z
    .record(z.string(), z.number())
    .nullish()
    .refine((v) => v === undefined || v === null || Object.keys(v).length === 0, {
      message: "not supported: its keys are OpenAI tokenizer ids, which mean nothing to a local model's vocabulary",
    }),
  // Accepted, changing nothing here: labels for OpenAI's own storage, billing and abuse tracking.
  user: z.string().max(256).nullish(),
  metadata: z.record(z.string(), z.string().max(512)).nullish(),
  store: z.boolean().nullish(),
  service_tier: z.string().max(64).nullish(),
  safety_identifier: z.string().max(256).nullish(),
  prompt_cache_key: z.string().max(256).nullish(),
  /** Potluck extension: run on this machine, or fail saying why it cannot. */
  potluck: z.strictObject({ on: MachineName.optional() }).optional(),
};

/**
 * POST /v1/chat/completions. `max_tokens` absent: until end of sequence or the end of the
 * context (OpenAI's default); `temperature` absent: 1 (OpenAI's default).
 */
export const ChatCompletionRequest = z.strictObject({
  ...common,
  messages: z.array(OpenAiMessage).min(1).max(SidecarLimits.messagesMax),
  max_completion_tokens: maxTokens,
  top_logprobs: z
    .number()
    .int()
    .nullish()
    .refine((v) => v === undefined || v === null || v === 0, {
      message: "not supported: token probabilities are not exposed by the runtime (see logprobs)",
    }),
  tools: z.array(WireTool).max(GenerationLimits.toolsMax).nullish(),
  tool_choice: OpenAiToolChoice.nullish(),
  /** Calls may come several at once; false is not enforced, and no client relies on it to be safe. */
  parallel_tool_calls: z.boolean().nullish(),
  response_format: OpenAiResponseFormat.nullish(),
  modalities: z
    .array(z.literal("text", { message: "only text output is supported" }))
    .max(1)
    .nullish(),
  audio: notSupported("audio output is not supported: the models Potluck runs produce text only"),
  prediction: notSupported("predicted outputs are not supported by the local runtime"),
  web_search_options: notSupported("web search is not supported: a local model has no browser"),
  reasoning_effort: notSupported("not supported: the local runtime has no reasoning budget to set"),
  verbosity: notSupported("not supported: the local runtime has no verbosity control"),
  functions: notSupported("the deprecated functions field is not supported; send tools"),
  function_call: notSupported("the deprecated function_call field is not supported; send tool_choice"),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/**
 * POST /v1/completions (legacy). `max_tokens` absent: 16, the legacy endpoint's documented default.
 * The prompt runs as one user turn through the model's chat template (the engine has one path).
 */
export const CompletionRequest = z.strictObject({
  ...common,
  prompt: z.union([text, z.array(text).min(1).max(OpenAiLimits.promptsMax)]),
  best_of: z
    .number()
    .int()
    .nullish()
    .refine((v) => v === undefined || v === null || v === 1, { message: "only 1 is supported (see n)" }),
  echo: z
    .boolean()
    .nullish()
    .refine((v) => v !== true, { message: "not supported: send the prompt back yourself" }),
  suffix: notSupported("not supported: the local runtime does not fill in the middle"),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

/** The legacy endpoint's default reply length (OpenAI documents 16). */
export const legacyCompletionMaxTokensDefault = 16;

/** OpenAI's error body: `param` names the offending field (a dotted path) or is null. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * A zod failure as OpenAI's 400: `param` is the dotted path of the first offending field, and an
 * unknown field is named itself (zod reports the object that holds it).
 */
export function describeOpenAiZodError(error: z.ZodError): { message: string; param: string } {
  const first = error.issues[0];
  if (first === undefined) return { message: "invalid request body", param: "body" };
  const issue = deepestIssue(first);
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const param = [...path, issue.keys[0] ?? ""].join(".");
    return {
      message:
        `${param}: not supported by Potluck; it would change the reply and the local runtime cannot honour it ` +
        `(leave it out)`,
      param,
    };
  }
  const param = path.length > 0 ? path.join(".") : "body";
  return { message: `${param}: ${issue.message}`, param };
}

/**
 * A union's failure, made specific: the branch that got furthest into the value names the field
 * (an image part inside a parts array); when none did, the message lists what each branch expects.
 */
function deepestIssue(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return issue;
  const branches = issue.errors.map((branch) => branch[0]).filter((b): b is z.core.$ZodIssue => b !== undefined);
  const deepest = branches.reduce<z.core.$ZodIssue | undefined>(
    (best, b) => (best === undefined || b.path.length > best.path.length ? b : best),
    undefined,
  );
  if (deepest !== undefined && deepest.path.length > 0)
    return deepestIssue({ ...deepest, path: [...issue.path, ...deepest.path] } as z.core.$ZodIssue);
  const expected = [...new Set(branches.map((b) => b.message.replace(/^Invalid (input|option): /, "")))];
  return { ...issue, message: expected.join(", or ") } as z.core.$ZodIssue;
}
