import {
  getLlama,
  LlamaChat,
  LlamaLogLevel,
  readGgufFileInfo,
  type Llama,
  type LlamaContext,
  type LlamaEmbeddingContext,
  type LlamaModel,
} from "node-llama-cpp";
import type { ModelInfo } from "@potluck/protocol";
import {
  EngineError,
  type EmbedResult,
  type EngineEvent,
  type GenerateRequest,
  type InferenceEngine,
  type ModelSource,
} from "./engine.js";
import { missingGgufKeys } from "./gguf-check.js";
import { generateReply } from "./llama-generate.js";
import { probeLoad } from "./probe-load.js";
import { describeSource, isTinyModelMetadata } from "./discovery/index.js";
import { RequestQueue } from "./request-queue.js";

export interface LlamaEngineOptions {
  /** CPU threads per evaluation. llama.cpp's default (≥4) crawls on a 2-core box; see config. */
  threads: number;
  /** Upper bound on a chat context; smaller of this and the model's training context is used. */
  contextSizeMax: number;
  /** Requests that may wait per model beyond the one running; more is a 503 queue_full. */
  queueWaitingMax: number;
  /** Context size of each model's embedding context. */
  embedContextSize: number;
}

interface Loaded {
  model: LlamaModel;
  context: LlamaContext;
  embedder: LlamaEmbeddingContext;
  /**
   * One chat on one sequence per model, reused by every request (the queue runs one at a time).
   * Creating a LlamaChat resolves the chat template against every known wrapper, 0.6-1 s here,
   * which per request would dwarf everything else; reuse also lets llama.cpp re-evaluate only
   * what differs from the previous prompt.
   */
  chat: LlamaChat;
}

interface Slot {
  source: ModelSource;
  info: ModelInfo;
  queue: RequestQueue;
  loaded?: Loaded;
}

/** InferenceEngine on node-llama-cpp: CPU only, prebuilt binaries only (never a source build). */
export class LlamaEngine implements InferenceEngine {
  private llama: Promise<Llama> | undefined;
  private readonly slots = new Map<string, Slot>();

  constructor(private readonly options: LlamaEngineOptions) {}

  async load(source: ModelSource): Promise<void> {
    if (this.slots.has(source.id))
      throw new Error(`loading model ${source.id}: a model with this id is already loaded or loading`);
    const slot: Slot = {
      source,
      info: { ...describeSource(source), state: "loading", progress: 0 },
      queue: new RequestQueue(source.id, { concurrency: 1, waitingMax: this.options.queueWaitingMax }),
    };
    this.slots.set(source.id, slot);
    // Discovery lists what it cannot serve (a reason) and embedders; neither reaches llama.cpp as a chat model.
    if (source.problem !== undefined) {
      slot.info = { ...describeSource(source), state: "failed", reason: source.problem };
      throw new EngineError(503, "model_failed", `model ${source.id}: ${source.problem}`);
    }
    if (source.kind === "embedding") return void (slot.info = { ...describeSource(source), state: "available" });
    try {
      // Always checked first: llama.cpp aborts the process on some missing keys. A renamed copy of
      // the generated test model is still labelled as one, from its metadata.
      const { metadata, parameters } = await this.checkMetadata(source);
      const testModel = source.testModel || isTinyModelMetadata(metadata);
      slot.info = { ...slot.info, testModel };
      // Then loaded once in a child process: what llama.cpp would abort on ends the child only.
      const probe = await probeLoad(source.path);
      if (!probe.ok)
        throw new Error(
          `${source.path}: ${probe.reason}; refusing to load it in the sidecar, which it would take down`,
        );
      slot.loaded = await this.open(slot);
      slot.info = {
        ...describeSource(source),
        state: "ready",
        testModel,
        contextSize: slot.loaded.context.contextSize,
        ...(parameters > 0 ? { parameters } : {}),
      };
    } catch (error) {
      slot.info = { ...describeSource(source), state: "failed", testModel: slot.info.testModel, reason: reasonOf(error) };
      throw new EngineError(503, "model_failed", `loading model ${source.id}: ${reasonOf(error)}`, { cause: error });
    }
  }

  async unload(id: string): Promise<void> {
    const slot = this.slots.get(id);
    this.slots.delete(id);
    await disposeLoaded(slot?.loaded);
  }

  list(): ModelInfo[] {
    return [...this.slots.values()].map((slot) => ({ ...slot.info }));
  }

  state(id: string): ModelInfo | undefined {
    const info = this.slots.get(id)?.info;
    return info === undefined ? undefined : { ...info };
  }

  async *stream(id: string, request: GenerateRequest): AsyncGenerator<EngineEvent> {
    const slot = this.readySlot(id);
    const release = await slot.queue.acquire(request.signal);
    try {
      yield* this.generate(slot, request);
    } finally {
      release();
    }
  }

  async embed(id: string, inputs: readonly string[], signal?: AbortSignal): Promise<EmbedResult> {
    const slot = this.readySlot(id);
    const release = await slot.queue.acquire(signal);
    try {
      const loaded = this.loadedOf(slot);
      const vectors: number[][] = [];
      let promptTokens = 0;
      for (const input of inputs) {
        signal?.throwIfAborted();
        const tokens = loaded.model.tokenize(input).slice(0, this.options.embedContextSize);
        promptTokens += tokens.length;
        vectors.push([...(await loaded.embedder.getEmbeddingFor(tokens)).vector]);
      }
      return { vectors, promptTokens };
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    const slots = [...this.slots.values()];
    this.slots.clear();
    for (const slot of slots) await disposeLoaded(slot.loaded);
    if (this.llama !== undefined) await (await this.llama).dispose();
  }

  private generate(slot: Slot, request: GenerateRequest): AsyncGenerator<EngineEvent> {
    return generateReply(this.loadedOf(slot).chat, request);
  }

  private readySlot(id: string): Slot {
    const slot = this.slots.get(id);
    if (slot === undefined) throw new EngineError(404, "model_not_found", `model ${id} is not loaded here`);
    if (slot.info.state === "loading")
      throw new EngineError(
        503,
        "model_not_ready",
        `model ${id} is still loading (${Math.round((slot.info.progress ?? 0) * 100)}%); retry shortly`,
      );
    if (slot.info.state === "failed")
      throw new EngineError(503, "model_failed", `model ${id} failed to load: ${slot.info.reason ?? "unknown reason"}`);
    return slot;
  }

  private loadedOf(slot: Slot): Loaded {
    if (slot.loaded === undefined)
      throw new EngineError(503, "model_not_ready", `model ${slot.source.id} is not loaded`);
    return slot.loaded;
  }

  /** The GGUF's metadata (validated) and its weight count (the sum over its tensors' shapes). */
  private async checkMetadata(source: ModelSource): Promise<{ metadata: Record<string, unknown>; parameters: number }> {
    const info = await readGgufFileInfo(source.path, { readTensorInfo: true, logWarnings: false }).catch(
      (error: unknown) => {
        throw new Error(`reading GGUF metadata of ${source.path}: ${reasonOf(error)}`);
      },
    );
    const metadata = info.metadata as unknown as Record<string, unknown>;
    const missing = missingGgufKeys(metadata);
    if (missing.length > 0)
      throw new Error(
        `${source.path} lacks required GGUF metadata (${missing.join(", ")}); refusing to load it because llama.cpp would abort the process`,
      );
    const parameters = (info.fullTensorInfo ?? info.tensorInfo ?? []).reduce(
      (sum, tensor) => sum + tensor.dimensions.reduce<number>((n, d) => n * Number(d), 1),
      0,
    );
    return { metadata, parameters };
  }

  private async open(slot: Slot): Promise<Loaded> {
    this.llama ??= getLlama({
      build: "never",
      gpu: false,
      maxThreads: this.options.threads,
      logLevel: LlamaLogLevel.error,
    });
    const llama = await this.llama;
    const model = await llama.loadModel({
      modelPath: slot.source.path,
      gpuLayers: 0,
      onLoadProgress: (progress) => {
        if (slot.info.state === "loading") slot.info = { ...slot.info, progress: Math.min(1, Math.max(0, progress)) };
      },
    });
    try {
      const threads = { ideal: this.options.threads, min: 1 };
      const contextSize = Math.min(model.trainContextSize, this.options.contextSizeMax);
      const context = await model.createContext({ contextSize, sequences: 1, threads });
      const embedder = await model.createEmbeddingContext({
        contextSize: Math.min(contextSize, this.options.embedContextSize),
        threads: this.options.threads,
      });
      const chat = new LlamaChat({ contextSequence: context.getSequence(), autoDisposeSequence: true });
      return { model, context, embedder, chat };
    } catch (error) {
      await model.dispose();
      throw error;
    }
  }
}

async function disposeLoaded(loaded: Loaded | undefined): Promise<void> {
  if (loaded === undefined) return;
  loaded.chat.dispose();
  await loaded.embedder.dispose();
  await loaded.context.dispose();
  await loaded.model.dispose();
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
