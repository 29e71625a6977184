import { z } from "zod";
import { ClientId, IsoTime, MachineName, OwnerName } from "./common.js";
import { ChatMessage, FinishReason, GenerationOptions, ToolCall } from "./generation.js";

/** Bounds on what a sidecar accepts; a bigger body is a 413, not an allocation. */
export const SidecarLimits = {
  messagesMax: 256,
  messageCharsMax: 64_000,
  maxTokensMax: 8_192,
  probeBytesMax: 65_536,
  embeddingInputsMax: 256,
  bodyBytesMax: 4 * 1024 * 1024,
} as const;

/** `available`: found on disk and loadable, not in memory now (it loads on first use). */
export const ModelState = z.enum(["available", "loading", "ready", "failed"]);
export type ModelState = z.infer<typeof ModelState>;

export const ModelInfo = z.object({
  id: z.string().min(1),
  state: ModelState,
  /** 0..1 while loading. */
  progress: z.number().min(0).max(1).optional(),
  /** The runtime's own words when state is failed. */
  reason: z.string().optional(),
  /** True for the generated random-weight model: never mistake it for a real one. */
  testModel: z.boolean(),
  contextSize: z.number().int().positive().optional(),
  /** Weights in the model (from its GGUF tensors); usage credits are priced by it. */
  parameters: z.number().int().positive().optional(),
  /** Embedding models are offered as embedders, not chat models. */
  kind: z.enum(["chat", "embedding"]).optional(),
  /** Where it was found: POTLUCK_MODELS, a discovered store, Potluck's own pulls, or the test model. */
  source: z.enum(["configured", "ollama", "lmstudio", "huggingface", "potluck", "test"]).optional(),
  /** Bytes on disk, all parts of a split model together. */
  sizeBytes: z.number().int().nonnegative().optional(),
  family: z.string().max(128).optional(),
  quantization: z.string().max(64).optional(),
  modifiedAt: IsoTime.optional(),
  /** Present while loaded: where it runs and when it will be unloaded (null: kept loaded). */
  runtime: z
    .object({
      backend: z.enum(["cpu", "cuda", "vulkan", "metal"]),
      gpuLayers: z.number().int().nonnegative(),
      vramBytes: z.number().int().nonnegative(),
      ramBytes: z.number().int().nonnegative(),
      expiresAt: IsoTime.nullable(),
    })
    .optional(),
});
export type ModelInfo = z.infer<typeof ModelInfo>;

export const EmbedderInfo = z.object({
  id: z.string().min(1),
  dimensions: z.number().int().positive(),
  state: ModelState,
});
export type EmbedderInfo = z.infer<typeof EmbedderInfo>;

export const Health = z.object({
  status: z.enum(["ok", "warming"]),
  machine: MachineName,
  uptimeS: z.number().nonnegative(),
});
export type Health = z.infer<typeof Health>;

export const Capabilities = z.object({
  machine: MachineName,
  owner: OwnerName,
  version: z.string(),
  status: z.enum(["ready", "warming"]),
  models: z.array(ModelInfo),
  embedder: EmbedderInfo.nullable(),
  memory: z.object({ peerSearchEnabled: z.boolean(), records: z.number().int().nonnegative() }),
  hardware: z.object({
    platform: z.string(),
    arch: z.string(),
    cpus: z.number().int().positive(),
    memoryBytes: z.number().int().positive(),
    gpu: z.string().nullable(),
  }),
});
export type Capabilities = z.infer<typeof Capabilities>;

/** At most this many model ids in a probe's answer: a machine serves a handful, never thousands. */
export const probeModelIdsMax = 64;

/**
 * POST /peer/probe: the payload crosses the path outbound and is echoed back inbound. A routing
 * decision names its `model`, and the answer then carries that model's state, so routing asks the
 * peer once instead of a probe plus a capabilities call — each signed call over the mesh costs
 * the prompt milliseconds before its first token. Diagnostics probes name none.
 */
export const ProbeRequest = z.object({
  payload: z.string().max(SidecarLimits.probeBytesMax),
  model: z.string().min(1).max(256).optional(),
});
export type ProbeRequest = z.infer<typeof ProbeRequest>;
/** The named model on the probed machine: its state (null when it has no such model) and what it does have. */
export const ProbeModel = z.object({
  info: ModelInfo.nullable(),
  available: z.array(z.string()).max(probeModelIdsMax),
});
export type ProbeModel = z.infer<typeof ProbeModel>;
/** `model` is there exactly when the request named one (a sidecar older than that field leaves it out). */
export const ProbeResponse = z.object({
  machine: MachineName,
  bytes: z.number().int().nonnegative(),
  payload: z.string(),
  model: ProbeModel.optional(),
});
export type ProbeResponse = z.infer<typeof ProbeResponse>;

/** ChatCompletionRequest (OpenAI's chat request) is in openai.ts with the rest of OpenAI's wire format. */

/**
 * GET /v1/models as the sidecar answers it: OpenAI's model list with Potluck's model state
 * alongside. Only the fields readers rely on; OpenAI's own (`object`, `created`, …) pass unchecked.
 */
export const ModelListResponse = z.object({
  data: z.array(
    z.object({
      id: z.string(),
      potluck: z.object({
        state: ModelState,
        progress: z.number().min(0).max(1).optional(),
        reason: z.string().optional(),
        test_model: z.boolean(),
      }),
    }),
  ),
});
export type ModelListResponse = z.infer<typeof ModelListResponse>;

/** A non-streaming POST /v1/chat/completions answer: the reply text and the machine that served it. */
export const ChatCompletionResponse = z.object({
  served_by: z.string().optional(),
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })),
});
export type ChatCompletionResponse = z.infer<typeof ChatCompletionResponse>;

export const EmbeddingsRequest = z.object({
  model: z.string().max(256).optional(),
  input: z.union([
    z.string().max(SidecarLimits.messageCharsMax),
    z.array(z.string().max(SidecarLimits.messageCharsMax)).min(1).max(SidecarLimits.embeddingInputsMax),
  ]),
  /** The official client asks for base64 (little-endian float32) by default. */
  encoding_format: z.enum(["float", "base64"]).optional(),
});
export type EmbeddingsRequest = z.infer<typeof EmbeddingsRequest>;

/** POST /peer/infer: one sidecar asks another to run a prompt; the reply is NDJSON chunks. */
/**
 * Every generation option travels, so a reply produced on a peer is produced as it would be here
 * (tools, schema, stop, sampling). `maxTokens` is always set by the router: it bounds the hold.
 */
export const PeerInferRequest = GenerationOptions.extend({
  jobId: ClientId,
  model: z.string().min(1).max(256),
  messages: z.array(ChatMessage).min(1).max(SidecarLimits.messagesMax),
  maxTokens: GenerationOptions.shape.maxTokens.unwrap(),
  requester: z.object({ machine: MachineName, owner: OwnerName }),
  /**
   * A job between owners: the event id of the hold the requester's machine placed for it (signed,
   * acknowledged by JetStream) before asking; the server settles that hold after the stream.
   */
  holdEventId: ClientId.optional(),
  /**
   * Where that hold sits on the usage stream (its JetStream sequence): the server reads it there
   * and checks it before the job runs, so a made-up hold id buys nothing.
   */
  holdSeq: z.number().int().positive().optional(),
});
export type PeerInferRequest = z.infer<typeof PeerInferRequest>;

export const Usage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
});

export const InferStreamChunk = z.discriminatedUnion("type", [
  z.object({ type: z.literal("token"), text: z.string() }),
  /**
   * The model is loading on the serving machine (it was available, not loaded): 0..1. Sent before
   * the first token, at most a few per second; front ends show it (an SSE comment for OpenAI).
   */
  z.object({ type: z.literal("loading"), model: z.string(), progress: z.number().min(0).max(1) }),
  /** One complete function call; the reply then ends with finishReason tool_calls. */
  z.object({ type: z.literal("tool_call"), call: ToolCall }),
  z.object({
    type: z.literal("done"),
    servedBy: MachineName,
    testModel: z.boolean(),
    finishReason: FinishReason,
    usage: Usage,
    at: IsoTime,
    /**
     * A job between owners: the settlement the server published (acknowledged) for the job's
     * hold before this chunk, so the requester can check it against what it observed.
     */
    settlement: z.object({ eventId: ClientId, amount: z.number().int().nonnegative() }).optional(),
  }),
  z.object({ type: z.literal("error"), code: z.string(), message: z.string(), layer: z.string().optional() }),
]);
export type InferStreamChunk = z.infer<typeof InferStreamChunk>;
