import { z } from "zod";
import { MachineName } from "./common.js";
import { GenerationLimits, ToolSpec } from "./generation.js";
import { SidecarLimits } from "./sidecar.js";

/**
 * Ollama's HTTP API as clients send it (docs/api.md of ollama/ollama): the request bodies of
 * /api/chat, /api/generate, /api/embed, /api/embeddings, /api/show and /api/pull. Every field a
 * client may send is named here. Fields that change nothing on Potluck (how a runtime is set up on
 * the machine: threads, GPU layers, mmap) are accepted; a field that would change the reply and is
 * not honoured is refused with a 400 naming it, never dropped. `null` counts as absent, as Ollama's
 * own decoder treats it, so clients that send every key (some Python ones do) work unchanged.
 */

export const OllamaLimits = {
  modelCharsMax: 256,
  /** Ollama's keep_alive beyond this is a typo more than a wish; -1 keeps a model loaded for good. */
  keepAliveMsMax: 366 * 24 * 3_600_000,
  /** /api/embed's `dimensions`: no embedding model here is wider. */
  embedDimensionsMax: 65_536,
} as const;

const ModelName = z.string().min(1, "expected a model name").max(OllamaLimits.modelCharsMax);

/** One value that changes nothing unless it differs from `off`: anything else is refused, naming why. */
function onlyValue<T extends number | boolean>(off: T, why: string) {
  return z.custom<T>((value) => value === off, { message: `only ${String(off)} is accepted: ${why}` });
}

/**
 * `keep_alive`: seconds as a number, or a Go duration ("5m", "1h30m", "300ms", "-1"); any negative
 * value keeps the model loaded for good, 0 unloads it after the request. The schema checks the
 * shape; `keepAliveMs` (below) turns it into milliseconds.
 */
export const OllamaKeepAlive = z.union([z.number().finite(), z.string().max(64)]).superRefine((value, ctx) => {
  const ms = keepAliveMs(value);
  if (ms === undefined)
    ctx.addIssue({
      code: "custom",
      message: `expected seconds as a number or a duration such as "5m", "1h30m", "300ms" or "-1", not ${JSON.stringify(value)}`,
    });
  else if (ms > OllamaLimits.keepAliveMsMax)
    ctx.addIssue({ code: "custom", message: "at most 366 days; send -1 to keep the model loaded for good" });
});
export type OllamaKeepAlive = z.infer<typeof OllamaKeepAlive>;

const durationUnitMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * keep_alive in milliseconds as GenerationOptions carries it: -1 for good, 0 at once, else a
 * positive whole number (rounded up, so "1ns" does not become "unload now"). Undefined when the
 * text is not a duration.
 */
export function keepAliveMs(value: number | string): number | undefined {
  if (typeof value === "number") return fromMs(value * 1_000);
  const text = value.trim();
  // A bare number is seconds, as a JSON number would be (Ollama's CLI and some clients send "300").
  if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text)) return fromMs(Number(text) * 1_000);
  const match = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+)$/.exec(text);
  if (match === null) return undefined;
  let ms = 0;
  for (const part of match[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)/g))
    ms += Number(part[1]) * durationUnitMs[part[2]!]!;
  return fromMs(match[1] === "-" ? -ms : ms);
}

function fromMs(ms: number): number | undefined {
  if (!Number.isFinite(ms)) return undefined;
  if (ms < 0) return -1;
  return ms === 0 ? 0 : Math.ceil(ms);
}

const Stop = z.string().min(1, "expected a non-empty stop sequence").max(GenerationLimits.stopCharsMax);

/**
 * `options`: Ollama's Modelfile parameters. Sampling options map onto GenerationOptions; options
 * that set the runtime up (context size, batch, threads, GPU, memory mapping) are the machine's
 * own settings on Potluck (POTLUCK_CONTEXT_SIZE, POTLUCK_THREADS) and do not change a reply that
 * fits, so they are accepted. Samplers Potluck does not run are accepted only at their off value.
 */
export const OllamaOptions = z.strictObject({
  // Honoured.
  num_predict: z
    .number()
    .int()
    .min(-2, "expected a number of tokens, -1 (no limit) or -2 (until the context is full)")
    .max(GenerationLimits.maxTokensMax)
    .refine((n) => n !== 0, "expected a positive number of tokens, -1 (no limit) or -2 (until the context is full)")
    .nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().nonnegative().max(1_000).nullish(),
  seed: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER).nullish(),
  stop: z.union([Stop, z.array(Stop).max(GenerationLimits.stopMax)]).nullish(),
  repeat_penalty: z.number().min(0).max(10).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  // How the runtime is set up: the machine's settings decide these.
  num_ctx: z.number().int().positive().max(1_048_576).nullish(),
  num_keep: z.number().int().min(-1).nullish(),
  num_batch: z.number().int().positive().nullish(),
  num_gpu: z.number().int().min(-1).nullish(),
  main_gpu: z.number().int().nonnegative().nullish(),
  num_thread: z.number().int().nonnegative().nullish(),
  numa: z.boolean().nullish(),
  low_vram: z.boolean().nullish(),
  f16_kv: z.boolean().nullish(),
  logits_all: z.boolean().nullish(),
  vocab_only: z.boolean().nullish(),
  use_mmap: z.boolean().nullish(),
  use_mlock: z.boolean().nullish(),
  embedding_only: z.boolean().nullish(),
  // Ollama itself ignores these two now (llama.cpp dropped tail-free sampling).
  tfs_z: z.number().nullish(),
  penalize_newline: z.boolean().nullish(),
  // Samplers Potluck does not run: their off value only.
  min_p: onlyValue(0, "Potluck does not apply min-p sampling").nullish(),
  typical_p: onlyValue(1, "Potluck does not apply locally typical sampling").nullish(),
  mirostat: onlyValue(0, "Potluck does not run the Mirostat sampler").nullish(),
  // Only read by Mirostat, which is off.
  mirostat_tau: z.number().nullish(),
  mirostat_eta: z.number().nullish(),
  repeat_last_n: onlyValue(64, "the repeat penalties look back over the last 64 tokens").nullish(),
});
export type OllamaOptions = z.infer<typeof OllamaOptions>;

/**
 * `format`: "json" (any JSON object), a JSON schema (output matching it), or "" (plain text). The
 * reply is constrained by a grammar, so even a small model answers in shape.
 */
export const OllamaFormat = z.union([z.literal("json"), z.literal(""), ToolSpec.shape.parameters.unwrap()], {
  error: 'expected "json" or a JSON schema object',
});

const noImages = z.array(z.string()).max(0, "images are not supported: no model here reads images").nullish();

/** A call the assistant made, as the client sends it back in the history. */
export const OllamaToolCall = z.object({
  id: z.string().min(1).max(128).nullish(),
  type: z.literal("function").nullish(),
  function: z.object({
    name: z.string().min(1).max(GenerationLimits.toolNameCharsMax),
    /** An object; some clients send the JSON text OpenAI-style. */
    arguments: z.union([z.record(z.string(), z.unknown()), z.string().max(GenerationLimits.schemaCharsMax)]).nullish(),
    index: z.number().int().nonnegative().nullish(),
  }),
});
export type OllamaToolCall = z.infer<typeof OllamaToolCall>;

export const OllamaMessage = z.strictObject({
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: z.string().max(SidecarLimits.messageCharsMax).nullish(),
  images: noImages,
  /** The model's earlier reasoning; Potluck's models emit none and their chat templates render none. */
  thinking: z.string().max(SidecarLimits.messageCharsMax).nullish(),
  tool_calls: z.array(OllamaToolCall).max(GenerationLimits.toolCallsMax).nullish(),
  /** On a `tool` message: the function it answers. */
  tool_name: z.string().max(GenerationLimits.toolNameCharsMax).nullish(),
  tool_call_id: z.string().max(128).nullish(),
});
export type OllamaMessage = z.infer<typeof OllamaMessage>;

export const OllamaTool = z.object({
  type: z.literal("function", 'expected "function": functions are the only tools'),
  function: ToolSpec,
});
export type OllamaTool = z.infer<typeof OllamaTool>;

/** Fields /api/chat and /api/generate share. */
const generationFields = {
  model: ModelName,
  stream: z.boolean().nullish(),
  format: OllamaFormat.nullish(),
  options: OllamaOptions.nullish(),
  keep_alive: OllamaKeepAlive.nullish(),
  think: onlyValue(false, "Potluck's models do not reason in a separate channel").nullish(),
  logprobs: onlyValue(false, "token probabilities are not reported here").nullish(),
  top_logprobs: onlyValue(0, "token probabilities are not reported here").nullish(),
  /** Newer Ollama: cut the history / shift the context when it is full. Potluck's engine does both. */
  truncate: onlyValue(true, "the engine always fits the history to the context").nullish(),
  shift: onlyValue(true, "the engine always shifts a full context").nullish(),
  /** Potluck extension, as on /v1/chat/completions: run on this machine, or fail saying why it cannot. */
  potluck: z.strictObject({ on: MachineName.nullish() }).nullish(),
};

/** POST /api/chat. No messages: load the model (or unload it, with keep_alive 0). */
export const OllamaChatRequest = z.strictObject({
  ...generationFields,
  messages: z.array(OllamaMessage).max(SidecarLimits.messagesMax).nullish(),
  tools: z.array(OllamaTool).max(GenerationLimits.toolsMax).nullish(),
});
export type OllamaChatRequest = z.infer<typeof OllamaChatRequest>;

/** POST /api/generate. No prompt: load the model (or unload it, with keep_alive 0). */
export const OllamaGenerateRequest = z.strictObject({
  ...generationFields,
  prompt: z.string().max(SidecarLimits.messageCharsMax).nullish(),
  system: z.string().max(SidecarLimits.messageCharsMax).nullish(),
  images: noImages,
  suffix: z.literal("", "fill-in-the-middle (suffix) is not supported: the engine renders chat turns only").nullish(),
  template: z.literal("", "a custom template is not supported: the model's own chat template is always used").nullish(),
  raw: onlyValue(false, "raw prompts are not supported: the model's own chat template is always used").nullish(),
  /** Deprecated in Ollama; Potluck never hands a context out, so only an empty one can come back. */
  context: z.array(z.number()).max(0, "Potluck returns no context; send the history as /api/chat messages").nullish(),
});
export type OllamaGenerateRequest = z.infer<typeof OllamaGenerateRequest>;

const EmbedText = z.string().max(SidecarLimits.messageCharsMax);

/** POST /api/embed: L2-normalized vectors, as Ollama returns them. */
export const OllamaEmbedRequest = z.strictObject({
  model: ModelName,
  input: z.union([EmbedText, z.array(EmbedText).min(1).max(SidecarLimits.embeddingInputsMax)]),
  truncate: onlyValue(true, "inputs longer than the embedding context are always cut to fit").nullish(),
  dimensions: z.number().int().positive().max(OllamaLimits.embedDimensionsMax).nullish(),
  options: OllamaOptions.nullish(),
  keep_alive: OllamaKeepAlive.nullish(),
});
export type OllamaEmbedRequest = z.infer<typeof OllamaEmbedRequest>;

/** POST /api/embeddings, the older form: one prompt, one raw vector. */
export const OllamaEmbeddingsRequest = z.strictObject({
  model: ModelName,
  prompt: EmbedText,
  options: OllamaOptions.nullish(),
  keep_alive: OllamaKeepAlive.nullish(),
});
export type OllamaEmbeddingsRequest = z.infer<typeof OllamaEmbeddingsRequest>;

/** POST /api/show; older clients send `name`. */
export const OllamaShowRequest = z
  .strictObject({
    model: ModelName.nullish(),
    name: ModelName.nullish(),
    verbose: z.boolean().nullish(),
    system: z.string().max(SidecarLimits.messageCharsMax).nullish(),
    template: z.string().max(SidecarLimits.messageCharsMax).nullish(),
    options: OllamaOptions.nullish(),
  })
  .refine((body) => (body.model ?? body.name) != null, { message: "expected a model name", path: ["model"] });
export type OllamaShowRequest = z.infer<typeof OllamaShowRequest>;

/** POST /api/pull; older clients send `name`. `insecure` is the puller's business (it is accepted). */
export const OllamaPullRequest = z
  .strictObject({
    model: ModelName.nullish(),
    name: ModelName.nullish(),
    insecure: z.boolean().nullish(),
    stream: z.boolean().nullish(),
  })
  .refine((body) => (body.model ?? body.name) != null, { message: "expected a model name", path: ["model"] });
export type OllamaPullRequest = z.infer<typeof OllamaPullRequest>;

/**
 * A zod failure as Ollama's error text: the first offending field, dotted, then what it expects.
 * A key Potluck does not know is named too (Ollama would ignore it; Potluck will not drop a field
 * that might have changed the reply).
 */
export function describeOllamaIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0];
  if (issue === undefined) return { field: "body", message: "body: invalid request" };
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const field = [...path, issue.keys[0] ?? ""].join(".");
    return { field, message: `${field}: not a field Potluck's Ollama API knows; remove it` };
  }
  const field = path.length > 0 ? path.join(".") : "body";
  return { field, message: `${field}: ${issue.message}` };
}
