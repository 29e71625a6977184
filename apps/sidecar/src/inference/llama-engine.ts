import {
  LlamaChat,
  readGgufFileInfo,
  type GgufFileInfo,
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
import { backendOf, describeGpu, openLlama, type GpuSetting } from "./gpu.js";
import { estimateFootprint, freeMemory, tooLargeMessage, type Footprint } from "./lifecycle/fit.js";
import { defaultKeepAliveMs, expiryOf, keepAliveMsMax } from "./lifecycle/keep-alive.js";
import { planEviction } from "./lifecycle/lru.js";
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
  /** POTLUCK_GPU; default auto (node-llama-cpp's choice among the prebuilt backends). */
  gpu?: GpuSetting;
  /** Idle time before a model is unloaded (POTLUCK_KEEP_ALIVE); -1 keeps it, 0 unloads after each request. */
  keepAliveMs?: number;
  /** Most models loaded at once (POTLUCK_MAX_LOADED); the least recently used idle one makes room. */
  maxLoaded?: number;
  /** RAM the loaded models may hold together; absent: what the OS reports available at each load. */
  memoryBudgetBytes?: number;
}

/** Load progress goes to each waiting request at most this often (a few events a second). */
const progressIntervalMs = 250;

/** Ollama's default on a CPU-only machine; a GPU machine may raise it with POTLUCK_MAX_LOADED. */
export const defaultMaxLoaded = 3;

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

/** The file's checked metadata, read once per model (a load after an unload reuses it). */
interface Checked {
  info: GgufFileInfo;
  testModel: boolean;
  parameters: number;
  footprint: Footprint;
}

/** A load in flight: `room` settles once memory was made for it (before any progress is reported). */
interface Loading {
  room: Promise<void>;
  done: Promise<Loaded>;
}

interface Slot {
  source: ModelSource;
  info: ModelInfo;
  queue: RequestQueue;
  checked?: Checked;
  loaded?: Loaded;
  loading?: Loading;
  /** Requests holding the model (running, queued or waiting for its load): it is not unloaded meanwhile. */
  users: number;
  lastUsedAt: number;
  keepAliveMs: number;
  expiresAt: number | null;
  timer?: NodeJS.Timeout;
}

/**
 * InferenceEngine on node-llama-cpp, prebuilt binaries only (never a source build). Every model is
 * registered as available and loads on its first request (which sees its progress); it is unloaded
 * after its keep-alive idle, or earlier, least recently used first, when another needs the room.
 */
export class LlamaEngine implements InferenceEngine {
  private llama: Promise<Llama> | undefined;
  private gpuText: string | null = null;
  private readonly slots = new Map<string, Slot>();
  /** Loads run one at a time: each room check then sees the memory the previous load took. */
  private loads: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: LlamaEngineOptions) {}

  /** Opens the runtime now: a POTLUCK_GPU backend that is not there fails start-up, not the first prompt. */
  async start(): Promise<void> {
    this.gpuText = await describeGpu(await this.runtime());
  }

  gpu(): string | null {
    return this.gpuText;
  }

  register(source: ModelSource): void {
    if (this.slots.has(source.id))
      throw new Error(`registering model ${source.id}: a model with this id is already registered`);
    const base = baseInfo(source);
    this.slots.set(source.id, {
      source,
      info: source.problem === undefined ? base : { ...base, state: "failed", reason: source.problem },
      queue: new RequestQueue(source.id, { concurrency: 1, waitingMax: this.options.queueWaitingMax }),
      users: 0,
      lastUsedAt: 0,
      keepAliveMs: this.keepAliveDefault(),
      expiresAt: null,
    });
  }

  /** Registers (if new) and loads now; resolves once ready. The keep-alive then runs as after a request. */
  async load(source: ModelSource): Promise<void> {
    if (!this.slots.has(source.id)) this.register(source);
    else if (this.slots.get(source.id)?.loaded !== undefined) return;
    const slot = this.usableSlot(source.id);
    slot.users += 1;
    try {
      const loading = this.loadingOf(slot);
      await loading.done;
    } finally {
      this.release(slot, undefined);
    }
  }

  /** Frees the model's memory now (after what is running on it); it stays listed, available again. */
  async unload(id: string, options: { forget?: boolean } = {}): Promise<void> {
    const slot = this.slots.get(id);
    if (slot === undefined) return;
    // Forgotten at once: no new request finds it, and one running finishes on what it holds.
    if (options.forget === true) this.slots.delete(id);
    await slot.loading?.done.catch(() => undefined);
    if (slot.users > 0) {
      slot.keepAliveMs = 0;
      return;
    }
    await this.evict(slot);
  }

  list(): ModelInfo[] {
    return [...this.slots.values()].map((slot) => this.view(slot));
  }

  state(id: string): ModelInfo | undefined {
    const slot = this.slots.get(id);
    return slot === undefined ? undefined : this.view(slot);
  }

  async *stream(id: string, request: GenerateRequest): AsyncGenerator<EngineEvent> {
    const slot = this.usableSlot(id);
    if (slot.source.kind === "embedding")
      throw new EngineError(
        400,
        "not_a_chat_model",
        `model ${id} is an embedding model: use it for embeddings (/v1/embeddings, memory), not for chat`,
      );
    this.hold(slot);
    try {
      if (slot.loaded === undefined) yield* this.awaitLoad(slot);
      const release = await slot.queue.acquire(request.signal);
      try {
        yield* this.generate(slot, request);
      } finally {
        release();
      }
    } finally {
      this.release(slot, request.keepAliveMs);
    }
  }

  async embed(id: string, inputs: readonly string[], signal?: AbortSignal): Promise<EmbedResult> {
    const slot = this.usableSlot(id);
    this.hold(slot);
    try {
      if (slot.loaded === undefined) await this.loadingOf(slot).done;
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
    } finally {
      this.release(slot, undefined);
    }
  }

  async close(): Promise<void> {
    const slots = [...this.slots.values()];
    this.slots.clear();
    for (const slot of slots) {
      clearTimeout(slot.timer);
      const loaded = slot.loaded ?? (await slot.loading?.done.catch(() => undefined));
      slot.loaded = undefined;
      await disposeLoaded(loaded);
    }
    if (this.llama !== undefined) await (await this.llama.catch(() => undefined))?.dispose();
  }

  private generate(slot: Slot, request: GenerateRequest): AsyncGenerator<EngineEvent> {
    return generateReply(this.loadedOf(slot).chat, request);
  }

  /** The slot a request may use: known and not failed (an unloaded or loading one loads or is joined). */
  private usableSlot(id: string): Slot {
    const slot = this.slots.get(id);
    if (slot === undefined) throw new EngineError(404, "model_not_found", `model ${id} is not available here`);
    if (slot.info.state === "failed")
      throw new EngineError(503, "model_failed", `model ${id} failed to load: ${slot.info.reason ?? "unknown reason"}`);
    return slot;
  }

  /**
   * Holds the model for one request. The bound is the queue's (one running, queueWaitingMax
   * waiting), enforced here too: requests waiting for a load are not in the queue yet.
   */
  private hold(slot: Slot): void {
    if (slot.users > this.options.queueWaitingMax)
      throw new EngineError(
        503,
        "queue_full",
        `model ${slot.source.id} is busy: its request queue is full (${this.options.queueWaitingMax} waiting); retry shortly`,
      );
    slot.users += 1;
    clearTimeout(slot.timer);
  }

  /** The request is over: the model's keep-alive (the request's own, if it set one) starts when it is idle. */
  private release(slot: Slot, keepAliveMs: number | undefined): void {
    slot.users -= 1;
    if (keepAliveMs !== undefined) slot.keepAliveMs = Math.min(keepAliveMs, keepAliveMsMax);
    if (slot.users > 0 || slot.loaded === undefined || this.slots.get(slot.source.id) !== slot) return;
    const now = Date.now();
    slot.lastUsedAt = now;
    slot.expiresAt = expiryOf(slot.keepAliveMs, now);
    clearTimeout(slot.timer);
    if (slot.keepAliveMs < 0) return;
    const expire = () => {
      if (slot.users === 0 && slot.loading === undefined) void this.evict(slot);
    };
    if (slot.keepAliveMs === 0) return expire();
    slot.timer = setTimeout(expire, slot.keepAliveMs);
    // An idle model's timer never keeps the process alive on its own.
    slot.timer.unref();
  }

  /** Progress events until the load (started or joined) ends; a does-not-fit error comes before the first. */
  private async *awaitLoad(slot: Slot): AsyncGenerator<EngineEvent> {
    const loading = this.loadingOf(slot);
    await loading.room;
    let last = -1;
    for (;;) {
      const progress = slot.info.progress ?? 0;
      if (progress !== last) yield { type: "loading", progress };
      last = progress;
      if (await settledWithin(loading.done, progressIntervalMs)) break;
    }
    await loading.done;
    if (last < 1) yield { type: "loading", progress: 1 };
  }

  /** The load in flight, or a new one; concurrent requests share it. */
  private loadingOf(slot: Slot): Loading {
    if (slot.loading !== undefined) return slot.loading;
    let roomMade: () => void = () => undefined;
    let roomRefused: (error: unknown) => void = () => undefined;
    const room = new Promise<void>((resolve, reject) => {
      roomMade = resolve;
      roomRefused = reject;
    });
    room.catch(() => undefined);
    const previous = this.loads;
    const done = previous
      .catch(() => undefined)
      .then(() => this.loadSlot(slot, roomMade))
      .catch((error: unknown) => {
        roomRefused(error);
        throw error;
      })
      .finally(() => {
        slot.loading = undefined;
      });
    done.catch(() => undefined);
    this.loads = done.catch(() => undefined);
    slot.loading = { room, done };
    return slot.loading;
  }

  /**
   * Checks, probes and estimates the model, makes room for it, then loads it. Everything before
   * the room is made happens before the first progress event, so a model that does not fit is a
   * plain error (an HTTP status) rather than an error after progress went out. The estimate comes
   * after the probe because node-llama-cpp's estimate loads the file's metadata in llama.cpp, which
   * aborts the process on the contradictions the probe catches in its child.
   */
  private async loadSlot(slot: Slot, roomMade: () => void): Promise<Loaded> {
    const id = slot.source.id;
    const base = baseInfo(slot.source);
    slot.info = { ...base, state: "loading", progress: 0 };
    let checked: Checked;
    try {
      checked = slot.checked ??= await this.check(slot.source);
      slot.info = { ...slot.info, testModel: checked.testModel, progress: 0.3 };
      await this.makeRoom(slot, checked.footprint);
    } catch (error) {
      // Refused for room, it stays available; its metadata or probe failing marks it failed.
      const testModel = slot.checked?.testModel ?? base.testModel;
      if (error instanceof EngineError) {
        slot.info = { ...base, testModel };
        throw error;
      }
      slot.info = { ...base, testModel, state: "failed", reason: reasonOf(error) };
      throw new EngineError(503, "model_failed", `loading model ${id}: ${reasonOf(error)}`, { cause: error });
    }
    roomMade();
    try {
      const loaded = await this.open(slot);
      slot.loaded = loaded;
      slot.lastUsedAt = Date.now();
      slot.info = {
        ...base,
        state: "ready",
        testModel: checked.testModel,
        contextSize: loaded.context.contextSize,
        ...(checked.parameters > 0 ? { parameters: checked.parameters } : {}),
      };
      return loaded;
    } catch (error) {
      slot.info = { ...base, state: "failed", testModel: checked.testModel, reason: reasonOf(error) };
      throw new EngineError(503, "model_failed", `loading model ${id}: ${reasonOf(error)}`, { cause: error });
    }
  }

  /**
   * Unloads least recently used idle models until this one fits: under POTLUCK_MAX_LOADED and
   * within free memory by node-llama-cpp's estimate. Nothing is unloaded when it cannot fit anyway.
   */
  private async makeRoom(slot: Slot, need: Footprint): Promise<void> {
    const residents = [...this.slots.values()]
      .filter((s) => s !== slot && s.loaded !== undefined)
      .map((s) => ({
        id: s.source.id,
        lastUsedAt: s.lastUsedAt,
        busy: s.users > 0 || s.loading !== undefined,
        ramBytes: s.checked?.footprint.ramBytes ?? 0,
        vramBytes: s.checked?.footprint.vramBytes ?? 0,
      }));
    const held = residents.reduce((sum, r) => sum + r.ramBytes, 0);
    const free = await freeMemory(await this.runtime(), this.options.memoryBudgetBytes, held);
    const maxLoaded = this.options.maxLoaded ?? defaultMaxLoaded;
    const plan = planEviction(residents, need, {
      maxLoaded,
      freeRamBytes: free.ramBytes,
      freeVramBytes: free.vramBytes,
    });
    const busy = residents.filter((r) => r.busy).length;
    if (!plan.ok && plan.why === "count")
      throw new EngineError(
        503,
        "no_room",
        `model ${slot.source.id} cannot load now: the ${busy} loaded models are all busy (POTLUCK_MAX_LOADED=${maxLoaded}); retry shortly`,
      );
    if (!plan.ok)
      throw new EngineError(
        507,
        "model_too_large",
        tooLargeMessage(
          slot.source.id,
          need,
          { ...free, ramBytes: plan.freeRamBytes, vramBytes: plan.freeVramBytes },
          busy,
        ),
      );
    for (const id of plan.evict) {
      const other = this.slots.get(id);
      if (other !== undefined) await this.evict(other);
    }
  }

  /** Frees a loaded model; it stays listed as available and loads again on its next request. */
  private async evict(slot: Slot): Promise<void> {
    clearTimeout(slot.timer);
    const loaded = slot.loaded;
    if (loaded === undefined) return;
    slot.loaded = undefined;
    slot.expiresAt = null;
    slot.info = {
      ...baseInfo(slot.source),
      ...(slot.checked === undefined ? {} : { testModel: slot.checked.testModel }),
    };
    await disposeLoaded(loaded);
  }

  /** The listed state; a loaded model also says where it runs, what it holds and when it goes. */
  private view(slot: Slot): ModelInfo {
    const info = { ...slot.info };
    const loaded = slot.loaded;
    if (loaded === undefined || info.state !== "ready") return info;
    const footprint = slot.checked?.footprint;
    info.runtime = {
      backend: backendOf(loaded.model.llama),
      gpuLayers: loaded.model.gpuLayers,
      vramBytes: footprint?.vramBytes ?? 0,
      ramBytes: footprint?.ramBytes ?? 0,
      expiresAt: slot.users > 0 || slot.expiresAt === null ? null : new Date(slot.expiresAt).toISOString(),
    };
    return info;
  }

  private loadedOf(slot: Slot): Loaded {
    if (slot.loaded === undefined)
      throw new EngineError(503, "model_not_ready", `model ${slot.source.id} is not loaded`);
    return slot.loaded;
  }

  private keepAliveDefault(): number {
    return this.options.keepAliveMs ?? defaultKeepAliveMs;
  }

  private runtime(): Promise<Llama> {
    this.llama ??= openLlama(this.options.gpu ?? "auto", this.options.threads);
    return this.llama;
  }

  /**
   * The GGUF's metadata (validated), a probe-load in a child, its weight count and node-llama-cpp's
   * estimate of its footprint. Once per model: a load after an unload reuses it.
   */
  private async check(source: ModelSource): Promise<Checked> {
    const info = await readGgufFileInfo(source.path, { readTensorInfo: true, logWarnings: false }).catch(
      (error: unknown) => {
        throw new Error(`reading GGUF metadata of ${source.path}: ${reasonOf(error)}`);
      },
    );
    // Always checked first: llama.cpp aborts the process on some missing keys. A renamed copy of
    // the generated test model is still labelled as one, from its metadata.
    const metadata = info.metadata as unknown as Record<string, unknown>;
    const missing = missingGgufKeys(metadata);
    if (missing.length > 0)
      throw new Error(
        `${source.path} lacks required GGUF metadata (${missing.join(", ")}); refusing to load it because llama.cpp would abort the process`,
      );
    // Loaded once in a child process first: what llama.cpp would abort on ends the child only.
    const probe = await probeLoad(source.path);
    if (!probe.ok)
      throw new Error(`${source.path}: ${probe.reason}; refusing to load it in the sidecar, which it would take down`);
    const parameters = (info.fullTensorInfo ?? info.tensorInfo ?? []).reduce(
      (sum, tensor) => sum + tensor.dimensions.reduce<number>((n, d) => n * Number(d), 1),
      0,
    );
    const footprint = await estimateFootprint(await this.runtime(), info, {
      contextSize: this.options.contextSizeMax,
      embedContextSize: this.options.embedContextSize,
    });
    return { info, testModel: source.testModel || isTinyModelMetadata(metadata), parameters, footprint };
  }

  private async open(slot: Slot): Promise<Loaded> {
    const llama = await this.runtime();
    const model = await llama.loadModel({
      modelPath: slot.source.path,
      // node-llama-cpp offloads what fits in free VRAM (0 layers without a GPU).
      gpuLayers: "auto",
      onLoadProgress: (progress) => {
        if (slot.info.state === "loading")
          slot.info = { ...slot.info, progress: 0.3 + 0.6 * Math.min(1, Math.max(0, progress)) };
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

/** What a model is before it loads: from its source (discovery's fields), state available. */
function baseInfo(source: ModelSource): ModelInfo {
  return { ...describeSource(source), state: "available" };
}

/** True once `promise` settled (either way), false if `ms` passed first; the timer never outlives it. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = promise.then(
    () => true,
    () => true,
  );
  const elapsed = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([settled, elapsed]);
  } finally {
    clearTimeout(timer);
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
