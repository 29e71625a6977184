import { availableParallelism, hostname } from "node:os";
import { DEFAULT_SUBJECT_ROOT, Defaults, MachineName, machineNameFromHost, OwnerName } from "@potluck/protocol";
import { ConfigFields, parseConfig, platformDataDir } from "@potluck/service";
import { z } from "zod";
import type { CpuPinSetting } from "./cpu-pin.js";
import { GpuSettings } from "./inference/gpu-settings.js";
import { defaultKeepAliveMs, parseKeepAlive } from "./inference/lifecycle/keep-alive.js";
import { PathConfirmLimits } from "./routing/confirmed.js";

/** Every sidecar setting and its default, in one block. */
export const SidecarConfigSchema = z.object({
  POTLUCK_DATA_DIR: z.string().min(1).default(platformDataDir()),
  POTLUCK_MACHINE: MachineName.default(machineNameFromHost(hostname())),
  POTLUCK_OWNER: OwnerName.default("home"),
  POTLUCK_PORT: ConfigFields.port(Defaults.sidecarPort),
  /**
   * Ollama's API on 127.0.0.1 at this port too (apps built for Ollama look at 11434); 0: off. If
   * Ollama or another program holds it, the sidecar says so and serves the API on its own port only.
   */
  POTLUCK_OLLAMA_PORT: z.coerce.number().int("expected a TCP port number or 0 (off)").min(0).max(65535).default(11434),
  POTLUCK_BIND: z.ipv4("expected an IPv4 address to bind, e.g. 0.0.0.0 or 127.0.0.1").default("0.0.0.0"),
  /** Model files and folders (searched recursively); when set, the only models served. */
  POTLUCK_MODELS: z.string().default(""),
  /** 1: with POTLUCK_MODELS empty, serve the models found in Ollama, LM Studio and the Hugging Face cache. */
  POTLUCK_DISCOVER: ConfigFields.flag(true),
  /** Ollama's own setting: where its store is (default ~/.ollama/models); read, never written. */
  OLLAMA_MODELS: z.string().min(1).optional(),
  /** Hugging Face's own settings: the hub cache is HF_HUB_CACHE, else HF_HOME/hub (~/.cache/huggingface/hub). */
  HF_HOME: z.string().min(1).optional(),
  HF_HUB_CACHE: z.string().min(1).optional(),
  /** GGUF embedding model for memory; unset means the weight-free lexical embedder. */
  POTLUCK_EMBED_MODEL: z.string().min(1).optional(),
  /**
   * Days without access after which a memory is cold (skipped unless includeCold or re-accessed).
   * Unset: the store's own default (StoreDefaults in memory/store.ts, which this light module does
   * not import: it loads the vector index's native code).
   */
  POTLUCK_MEMORY_COLD_DAYS: z.coerce.number().positive("expected a positive number of days").optional(),
  /** Rows per project tier past which an HNSW index is built (search below it is exact); unset: the store's default. */
  POTLUCK_MEMORY_ANN_THRESHOLD: z.coerce.number().int().min(1_000, "expected at least 1000 rows").optional(),
  POTLUCK_COORDINATOR_URL: ConfigFields.url(["http", "https"]).optional(),
  POTLUCK_NATS_URL: ConfigFields.url(["nats", "tls"]).default(Defaults.natsUrl),
  /** Subject root on NATS; lets several meshes (or test runs) share one server. */
  POTLUCK_NATS_PREFIX: z
    .string()
    .regex(/^[a-z0-9_-]{1,32}$/, "expected 1-32 of a-z, 0-9, _ or -")
    .default(DEFAULT_SUBJECT_ROOT),
  /** Whether own machines may search this memory at start; `potluck memory share on|off` changes it until a restart. */
  POTLUCK_PEER_MEMORY_ENABLED: ConfigFields.flag(false),
  POTLUCK_INTERFACE: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,15}$/, "expected a network interface name (1-15 characters)")
    .default(Defaults.interfaceName),
  /**
   * CPU threads per evaluation, from the real core count (see defaultThreads), never llama.cpp's
   * default of at least 4: on a 2-core machine 4 threads gave ~4 tokens/s where 1 gave ~1,750.
   */
  POTLUCK_THREADS: z.coerce
    .number()
    .int("expected a whole number of threads")
    .min(1, "expected at least 1 thread")
    .max(256)
    .default(defaultThreads()),
  /**
   * "auto": a model on one thread keeps this process on one CPU (see cpu-pin.ts); "off"; or the
   * number of the CPU to pin to.
   */
  POTLUCK_CPU_PIN: z
    .string()
    .regex(/^(auto|off|\d{1,4})$/, "expected auto, off or a CPU number")
    .default("auto")
    .transform((v): CpuPinSetting => (v === "auto" || v === "off" ? v : Number(v))),
  /**
   * 1: the own machine that served a model last gets the next job for it beside its fresh probe
   * (routing/head-start.ts); 0: every remote job waits for the probes first.
   */
  POTLUCK_HEAD_START: ConfigFields.flag(true),
  /**
   * Milliseconds a path stays confirmed after a fresh probe answered or a reply ran to its end;
   * within them a head-started first token does not wait for its own probe (routing/confirmed.ts).
   * 0 (the default: its gain was not conclusive, BENCHMARKS.md): every first token waits for its probe.
   */
  POTLUCK_PATH_CONFIRMED_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000, "expected at most 60000 ms")
    .default(PathConfirmLimits.defaultForMs),
  /** Largest chat context per model (tokens); the model's own training context caps it too. */
  POTLUCK_CONTEXT_SIZE: z.coerce.number().int().min(256, "expected at least 256 tokens").max(131_072).default(4096),
  /**
   * How long a model stays loaded after its last request, as Ollama's keep_alive: "5m", "30s",
   * "1h30m", a number of seconds, -1 to keep models loaded, 0 to unload after each request. In ms.
   */
  POTLUCK_KEEP_ALIVE: z
    .string()
    .default(String(defaultKeepAliveMs / 1000))
    .transform((text, ctx) => {
      const ms = parseKeepAlive(text);
      if (ms instanceof Error) ctx.addIssue({ code: "custom", message: ms.message });
      return ms instanceof Error ? z.NEVER : ms;
    }),
  /** Most models loaded at once; the least recently used idle one is unloaded to make room. */
  POTLUCK_MAX_LOADED: z.coerce.number().int().min(1, "expected at least 1 model").max(64).default(3),
  /**
   * llama.cpp's backend: auto (node-llama-cpp picks among the installed prebuilt binaries, CPU when
   * no GPU works), off (CPU only), or cuda, vulkan, metal (start-up fails if it is not there).
   */
  POTLUCK_GPU: z.enum(GpuSettings, { error: "expected auto, off, cuda, vulkan or metal" }).default("auto"),
  /** Requests that may wait per model while one runs; beyond this the answer is 503 queue_full. */
  POTLUCK_QUEUE_MAX: z.coerce.number().int().min(0).max(1024, "expected at most 1024").default(16),
  /** Seed of the generated tiny TEST model served when POTLUCK_MODELS is empty. */
  POTLUCK_TINY_SEED: z.coerce.number().int().min(0).max(0xffffffff).default(1),
  /** Static roster (the coordinator's Roster JSON schema) until the coordinator client replaces it. */
  POTLUCK_ROSTER_FILE: z.string().min(1).optional(),
  /** Port peers' sidecars listen on over the mesh. */
  POTLUCK_PEER_PORT: ConfigFields.port(Defaults.sidecarPort),
  /** Overrides a peer's address ("linux=http://127.0.0.1:9000,…"), for loopback tests and odd setups. */
  /**
   * Opens the local API (OpenAI, memory, diagnostics) to callers off this machine that send
   * `Authorization: Bearer <key>`; unset, it is served to loopback only. Never opened without one.
   */
  POTLUCK_API_KEY: z
    .string()
    .regex(/^\S{16,256}$/, "expected 16-256 characters without spaces, e.g. from `openssl rand -hex 16`")
    .optional(),
  POTLUCK_PEER_URLS: z
    .string()
    .regex(
      /^([a-z0-9-]+=https?:\/\/[^,\s]+)?(,[a-z0-9-]+=https?:\/\/[^,\s]+)*$/,
      "expected machine=http://host:port[,…]",
    )
    .default(""),
});
export type SidecarConfig = z.infer<typeof SidecarConfigSchema>;

export function loadSidecarConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = process.argv.slice(2),
): SidecarConfig {
  return parseConfig(SidecarConfigSchema, env, argv);
}

/**
 * One thread fewer than the cores this process may use, at least 1. llama.cpp's threads spin while
 * waiting, so a thread per core starves the event loop and anything else on the box: measured here
 * (2 cores, busy machine), 200 tokens took ~1 s with 1 thread and 6-45 s with 2.
 */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Parses POTLUCK_PEER_URLS into machine -> base URL. */
export function parsePeerUrls(text: string): Map<string, string> {
  const urls = new Map<string, string>();
  for (const item of text.split(",").filter((part) => part.length > 0)) {
    const eq = item.indexOf("=");
    urls.set(item.slice(0, eq), item.slice(eq + 1).replace(/\/$/, ""));
  }
  return urls;
}
