import type { ChatMessage, FinishReason, GenerationOptions, ModelInfo, ToolCall } from "@potluck/protocol";

/**
 * The one internal interface between the sidecar and a model runtime. Routes, the router and the
 * peer API talk only to this; node-llama-cpp is one implementation (llama-engine.ts).
 */
export interface InferenceEngine {
  /** Starts loading; resolves once the model is ready, rejects with the runtime's reason. */
  load(source: ModelSource): Promise<void>;
  /**
   * Lists a model as available without loading it; its first request loads it (and sees
   * `loading` events). Engines without lazy loading leave it out and are given `load` instead.
   */
  register?(source: ModelSource): void;
  /** Opens the runtime (a missing GPU backend fails here, at start-up). */
  start?(): Promise<void>;
  /** The GPU in use, in words ("cuda: NVIDIA H200 (…)"), or null on CPU; after start(). */
  gpu?(): string | null;
  /**
   * Frees the model's memory; it stays listed and loads again on its next request. `forget`: it is
   * no longer listed either (its files were removed: `potluck models rm`).
   */
  unload(id: string, options?: { forget?: boolean }): Promise<void>;
  list(): ModelInfo[];
  state(id: string): ModelInfo | undefined;
  /** Streams one chat completion: token events, then exactly one done event (or a thrown error). */
  stream(id: string, request: GenerateRequest): AsyncGenerator<EngineEvent>;
  embed(id: string, inputs: readonly string[], signal?: AbortSignal): Promise<EmbedResult>;
  close(): Promise<void>;
}

/** A model file the engine can load; `id` is what clients name in `model`. */
export interface ModelSource {
  id: string;
  /** The file llama.cpp opens: the first part of a split model. */
  path: string;
  /** The generated random-weight model: labelled as a test model everywhere. */
  testModel: boolean;
  /** Where it was found (discovery); absent: POTLUCK_MODELS as given. */
  source?: NonNullable<ModelInfo["source"]>;
  kind?: NonNullable<ModelInfo["kind"]>;
  /** Every file of the model (a split model has several); absent: just `path`. */
  parts?: readonly string[];
  sizeBytes?: number;
  family?: string;
  quantization?: string;
  modifiedAt?: string;
  /** Found but unusable (corrupt, unsupported): listed with this reason, never loaded. */
  problem?: string;
}

/**
 * One generation: the messages and every option of GenerationOptions (protocol/generation.ts),
 * which the engine honours or refuses up front. maxTokens absent: until end of sequence or the
 * end of the context.
 */
export interface GenerateRequest extends GenerationOptions {
  messages: readonly ChatMessage[];
  signal?: AbortSignal;
  /**
   * Streaming consumers pay per event (a write, a wake-up, a parse at the other end): tokens that
   * arrive within this many ms of the previous token event are joined into the next one. The
   * first token and the end of the reply are never held. 0 (the default) joins only what is
   * already waiting when the consumer pulls.
   */
  batchWindowMs?: number;
}

export type EngineEvent =
  | { type: "token"; text: string }
  /** Loading a model that was available but not in memory: before any token, 0..1. */
  | { type: "loading"; progress: number }
  | { type: "tool_call"; call: ToolCall }
  | { type: "done"; finishReason: FinishReason; usage: { promptTokens: number; completionTokens: number } };

export interface EmbedResult {
  vectors: number[][];
  promptTokens: number;
}

/** Errors the engine reports to callers; `status` maps onto HTTP. */
export class EngineError extends Error {
  override name = "EngineError";
  constructor(
    readonly status: 400 | 404 | 409 | 503 | 507,
    readonly code:
      /** An option the runtime cannot honour as given (a schema its grammar cannot express). */
      | "invalid_request"
      | "model_not_found"
      | "model_not_ready"
      | "queue_full"
      | "model_failed"
      /** An embedding model asked to chat. */
      | "not_a_chat_model"
      /** It does not fit in free memory even with every idle model unloaded (507). */
      | "model_too_large"
      /** POTLUCK_MAX_LOADED models are loaded and all busy. */
      | "no_room"
      /** The prompt (messages, tools, system text) does not fit in the model's context (400, as OpenAI). */
      | "context_length_exceeded",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
