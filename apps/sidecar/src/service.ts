import { homedir } from "node:os";
import { join } from "node:path";
import type { HttpBindings } from "@hono/node-server";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Diagnostics } from "@potluck/diagnostics";
import { coordinatorRoster, fileRoster, PeerClient, ReplayCache, type PeerRoster } from "@potluck/peer";
import { ConfigError, messageOf, type Logger } from "@potluck/service";
import { buildSidecarApp, type SidecarApp, type SidecarDeps } from "./app.js";
import { parsePeerUrls, type SidecarConfig } from "./config.js";
import { pinForModels } from "./cpu-pin.js";
import type { InferenceEngine, ModelSource } from "./inference/engine.js";
import { embedderOffers, type EmbedderOffer } from "./inference/discovery/offers.js";
import { resolveModelSources } from "./inference/model-sources.js";
import { httpPeerSearcher } from "./memory/fleet.js";
import type { OpenedMemory } from "./memory/open.js";
import { peerSharing, sharesFileName, type PeerSharing } from "./memory/sharing.js";
import { startSidecarNats } from "./nats-connection.js";
import { NatsParts } from "./nats-parts.js";
import { hubUrlsOverMesh, joinedMeshState, pinnedCoordinatorKey } from "./peer/coordinator-key.js";
import { noPeers, rosterDirectory, type PeerDirectory } from "./peer/directory.js";
import { loadOrCreateIdentity, type Identity } from "./peer/identity.js";
import { createSidecarDiagnostics } from "./routes/diagnostics-wiring.js";
import { ollamaRoutes, startOllamaPort, type ModelPuller } from "./routes/ollama/index.js";
import { diagnoseWith } from "./routing/diagnose.js";
import { Router } from "./routing/router.js";
import type { UsagePublisher } from "./usage/publisher.js";
import { SidecarMetrics } from "./metrics.js";
import { pulledDir, pulledModelSources } from "./models/manifest.js";
import { PulledModels } from "./models/puller.js";
import type { HoldChecker } from "./usage/hold-check.js";

/**
 * What tests and benches may put in place of the real thing. The service closes only what it
 * created: an injected engine, memory or NATS connection stays the caller's to close.
 */
export interface SidecarOverrides {
  log?: Logger;
  /** The one NATS connection; null runs without NATS. Absent: the service connects to POTLUCK_NATS_URL. */
  nats?: NatsConnection | null;
  engine?: InferenceEngine;
  /** The models to offer; absent: POTLUCK_MODELS (or the tiny test model). */
  models?: readonly ModelSource[];
  identity?: Identity;
  directory?: PeerDirectory;
  /** Usage events go here instead of NATS. */
  /** Checks holds of other owners' jobs; absent: read from the usage stream on NATS (none without NATS). */
  holds?: HoldChecker;
  usage?: UsagePublisher;
  /** An open memory store; null: no memory API. Absent: opened in POTLUCK_DATA_DIR/memory. */
  memory?: OpenedMemory | null;
  /** null: no diagnostics routes, and the router explains no failure. */
  diagnostics?: Diagnostics | null;
  /**
   * Nonces seen on signed peer requests; a fresh cache with the default bounds unless given (tests use small bounds).
   */
  replay?: ReplayCache;
  /** The caller's address; the node socket's by default. For `app.request()` tests, which have no socket. */
  remoteAddress?: SidecarDeps["remoteAddress"];
  /** Reads the WireGuard key heartbeats carry; `wg show` by default. */
  readWireguardKey?: (interfaceName: string) => Promise<string | null>;
  version?: string;
  /** Downloads models for Ollama's /api/pull; absent, /api/pull answers 501. */
  puller?: ModelPuller;
}

export interface SidecarService {
  app: SidecarApp;
  identity: Identity;
  engine: InferenceEngine;
  /** The memory-sharing opt-in, changed by `potluck memory share on|off`. */
  sharing: PeerSharing;
  /** The models offered (their ids are the names clients ask for); each loads on its first request. */
  models: readonly ModelSource[];
  /** Where Ollama's API listens besides the sidecar's port (POTLUCK_OLLAMA_PORT); undefined: nowhere else. */
  ollamaPort: number | undefined;
  /**
   * Resolves once every model is registered (by an engine without lazy loading: loaded); /health
   * says "warming" until then.
   */
  warm: Promise<void>;
  /** Ends heartbeats and subscriptions, drains its own NATS, closes what it opened. Stop serving first. */
  close(): Promise<void>;
}

/**
 * Start-up waits this long for NATS so the first usage event is normally published; later, it attaches when NATS
 * answers.
 */
const natsStartWaitMs = 3_000;

/** Everything main.ts wires, as one function so tests and benches run the real thing in-process. */
export async function startSidecarService(
  settings: SidecarConfig,
  overrides: SidecarOverrides = {},
): Promise<SidecarService> {
  const log = overrides.log ?? silentLog;
  const info = (message: string) => log.info(message);
  // A joined machine reaches the hub over the mesh, whatever LAN address its settings name.
  const config = hubUrlsOverMesh(settings, joinedMeshState(settings.POTLUCK_DATA_DIR), info);
  const machine = config.POTLUCK_MACHINE;
  const owner = config.POTLUCK_OWNER;
  const pulled = pulledDir(config.POTLUCK_DATA_DIR);
  // What `potluck models pull` downloaded loads with the rest (overrides.models replaces both);
  // a discovered model of the same name wins, and the pulled one is skipped.
  const sources =
    overrides.models ?? withoutDuplicateIds([...(await modelSources(config, log)), ...pulledModelSources(pulled)]);
  const identity = overrides.identity ?? loadOrCreateIdentity(config.POTLUCK_DATA_DIR, machine, info);
  await pinForModels({ setting: config.POTLUCK_CPU_PIN, threads: config.POTLUCK_THREADS, models: sources.length, log });
  // One roster source, read by the peer directory (routing, signatures, fleet search) and diagnostics.
  const roster = rosterFor(config, info);
  const directory =
    overrides.directory ?? (roster === undefined ? noPeers : rosterDirectory(roster, peerAddressing(config)));
  // One peer client for every /peer/* call: routing, diagnostics and fleet memory search.
  const peerClient = new PeerClient({ sign: identity.sign });
  const engine = overrides.engine ?? (await llamaEngine(config));
  const metrics = new SidecarMetrics(engine);
  const meteredPeers = metrics.instrumentPeerClient(peerClient);
  let warm = false;
  const parts = new NatsParts({
    heartbeat: config.POTLUCK_COORDINATOR_URL !== undefined,
    prefix: config.POTLUCK_NATS_PREFIX,
    machine,
    interfaceName: config.POTLUCK_INTERFACE,
    status: () => (warm ? "ok" : "warming"),
    log: info,
    sign: identity.sign,
    lookupKey: async (name) => (await directory.signer(name))?.identityPublicKey,
    ...(overrides.readWireguardKey === undefined ? {} : { readKey: overrides.readWireguardKey }),
  });
  const nats = startSidecarNats({ config, injected: overrides.nats, parts, log, startWaitMs: natsStartWaitMs });
  await nats.started;
  const memory = overrides.memory === undefined ? await openOwnMemory(config, log) : overrides.memory;
  const sharing = peerSharing(config.POTLUCK_PEER_MEMORY_ENABLED, {
    path: join(config.POTLUCK_DATA_DIR, sharesFileName),
    log: info,
  });
  const diagnostics =
    overrides.diagnostics === undefined
      ? createSidecarDiagnostics({
          machine,
          owner,
          interfaceName: config.POTLUCK_INTERFACE,
          port: config.POTLUCK_PORT,
          peerPort: config.POTLUCK_PEER_PORT,
          startedAt: Date.now(),
          isWarm: () => warm,
          client: peerClient,
          peerFirewall: parts.peerFirewall,
          ...(config.POTLUCK_COORDINATOR_URL === undefined ? {} : { coordinatorUrl: config.POTLUCK_COORDINATOR_URL }),
          ...(roster === undefined ? {} : { roster }),
        })
      : overrides.diagnostics;
  const usage = overrides.usage ?? parts.usage;
  // A candidate the router cannot use is explained by the same checks `potluck doctor` runs.
  const router = new Router({
    machine,
    owner,
    engine,
    directory,
    client: meteredPeers,
    usage,
    log: info,
    headStart: config.POTLUCK_HEAD_START,
    confirmedForMs: config.POTLUCK_PATH_CONFIRMED_MS,
    ...(diagnostics === null ? {} : { diagnose: diagnoseWith(diagnostics) }),
  });
  const warmed = registerModels(engine, sources, config.POTLUCK_THREADS, log).then(() => void (warm = true));
  const version = overrides.version ?? "0.1.0";
  const startedAt = Date.now();
  const pulls = new PulledModels({ dir: pulled, engine });
  const puller = overrides.puller ?? pulls.asModelPuller();
  const app = buildSidecarApp({
    machine,
    owner,
    version,
    startedAt,
    isWarm: () => warm,
    remoteAddress:
      overrides.remoteAddress ?? ((c) => (c.env as HttpBindings | undefined)?.incoming?.socket?.remoteAddress),
    engine,
    router,
    directory,
    replay: overrides.replay ?? new ReplayCache(),
    usage,
    holds: overrides.holds ?? parts.holds,
    metrics,
    peerCapabilities: meteredPeers,
    pulls,
    ...(config.POTLUCK_API_KEY === undefined ? {} : { apiKey: config.POTLUCK_API_KEY }),
    ...(diagnostics === null ? {} : { diagnostics }),
    ...(memory === null ? {} : memoryDeps(memory, owner, sharing, directory, peerClient, offersFor(config, sources))),
    puller,
  });
  const ollama = await startOllamaPort({
    port: config.POTLUCK_OLLAMA_PORT,
    sidecarPort: config.POTLUCK_PORT,
    routes: ollamaRoutes({
      machine,
      engine,
      router: metrics.instrumentRouter(router),
      startedAt,
      version,
      log,
      puller,
    }),
    ...(config.POTLUCK_API_KEY === undefined ? {} : { apiKey: config.POTLUCK_API_KEY }),
    log,
  });
  return {
    app,
    ollamaPort: ollama.port,
    identity,
    engine,
    sharing,
    models: sources,
    warm: warmed,
    async close() {
      await ollama.close();
      await parts.close();
      await nats.close();
      if (overrides.engine === undefined) await engine.close();
      if (overrides.memory === undefined) await memory?.close();
    },
  };
}

/**
 * Memory as the app mounts it: the opt-in and the project grants are read on every request, so
 * `memory share` needs no restart. A caller's owner is its roster entry's, found by the machine
 * the signature check verified.
 */
function memoryDeps(
  memory: OpenedMemory,
  owner: string,
  sharing: PeerSharing,
  directory: PeerDirectory,
  peerClient: PeerClient,
  offers: EmbedderOffer[],
) {
  return {
    memory: () => ({ peerSearchEnabled: sharing.enabled(), records: memory.store.size }),
    embedder: () => ({ id: memory.embedder.id, dimensions: memory.embedder.dimensions, state: "ready" as const }),
    memoryApi: {
      store: memory.store,
      peerSearchEnabled: sharing.enabled,
      setPeerSearchEnabled: sharing.set,
      owner,
      shares: sharing,
      fleet: { roster: directory, search: httpPeerSearcher(peerClient) },
      embedderOffers: () => offers,
    },
  };
}

/** Discovered embedders are offered to memory only while none is configured. */
function offersFor(config: SidecarConfig, sources: readonly ModelSource[]): EmbedderOffer[] {
  return config.POTLUCK_EMBED_MODEL === undefined ? embedderOffers(sources) : [];
}

/** POTLUCK_MODELS or the discovered stores; a missing POTLUCK_MODELS path is a configuration error naming it. */
async function modelSources(config: SidecarConfig, log: Logger): Promise<ModelSource[]> {
  try {
    return await resolveModelSources({
      configured: config.POTLUCK_MODELS,
      discover: config.POTLUCK_DISCOVER,
      env: { OLLAMA_MODELS: config.OLLAMA_MODELS, HF_HOME: config.HF_HOME, HF_HUB_CACHE: config.HF_HUB_CACHE },
      home: homedir(),
      dataDir: config.POTLUCK_DATA_DIR,
      tinySeed: config.POTLUCK_TINY_SEED,
      warn: (message) => log.warn(message),
    });
  } catch (error) {
    throw new ConfigError("POTLUCK_MODELS", messageOf(error));
  }
}

/** A roster file wins (labs, machines without a coordinator); else the coordinator's roster. */
function rosterFor(config: SidecarConfig, log: (message: string) => void): PeerRoster | undefined {
  if (config.POTLUCK_ROSTER_FILE !== undefined) return fileRoster({ path: config.POTLUCK_ROSTER_FILE, log });
  if (config.POTLUCK_COORDINATOR_URL !== undefined)
    return coordinatorRoster({
      url: config.POTLUCK_COORDINATOR_URL,
      coordinatorKey: pinnedCoordinatorKey(config.POTLUCK_DATA_DIR),
      log,
    });
  return undefined;
}

function peerAddressing(config: SidecarConfig) {
  return {
    self: config.POTLUCK_MACHINE,
    peerPort: config.POTLUCK_PEER_PORT,
    urlOverrides: parsePeerUrls(config.POTLUCK_PEER_URLS),
  };
}

// The model runtime and the vector index load only here, when the service builds its own engine
// and store: index.ts exports this module to the CLI, which must start without them.
async function llamaEngine(config: SidecarConfig): Promise<InferenceEngine> {
  const { LlamaEngine } = await import("./inference/llama-engine.js");
  const engine = new LlamaEngine({
    threads: config.POTLUCK_THREADS,
    contextSizeMax: config.POTLUCK_CONTEXT_SIZE,
    queueWaitingMax: config.POTLUCK_QUEUE_MAX,
    embedContextSize: 512,
    gpu: config.POTLUCK_GPU,
    keepAliveMs: config.POTLUCK_KEEP_ALIVE,
    maxLoaded: config.POTLUCK_MAX_LOADED,
  });
  try {
    await engine.start();
  } catch (error) {
    await engine.close();
    throw new ConfigError("POTLUCK_GPU", messageOf(error));
  }
  return engine;
}

/** The store replays from disk and the embedder loads now, before the first request. */
async function openOwnMemory(config: SidecarConfig, log: Logger): Promise<OpenedMemory> {
  const { openMemory } = await import("./memory/open.js");
  const memory = await openMemory({
    dataDir: config.POTLUCK_DATA_DIR,
    ...(config.POTLUCK_EMBED_MODEL === undefined ? {} : { embedModel: config.POTLUCK_EMBED_MODEL }),
    threads: config.POTLUCK_THREADS,
    gpu: config.POTLUCK_GPU,
    ...(config.POTLUCK_MEMORY_COLD_DAYS === undefined ? {} : { coldDays: config.POTLUCK_MEMORY_COLD_DAYS }),
    ...(config.POTLUCK_MEMORY_ANN_THRESHOLD === undefined
      ? {}
      : { annThresholdRows: config.POTLUCK_MEMORY_ANN_THRESHOLD }),
  });
  log.info({ embedder: memory.embedder.id, ...memory.store.counts() }, "memory store open");
  return memory;
}

/**
 * Models are listed now and load on their first request (the engine's keep-alive unloads them
 * again), so start-up costs no model memory and a household's many models can all be offered.
 * "Warm" is then: the runtime opened (a missing GPU backend has failed start-up by now) and every
 * model registered. An engine without lazy loading (a test's own) loads them all now, as before.
 */
async function registerModels(
  engine: InferenceEngine,
  sources: readonly ModelSource[],
  threads: number,
  log: Logger,
): Promise<void> {
  if (engine.register === undefined) {
    const results = await Promise.allSettled(sources.map((source) => engine.load(source)));
    results.forEach((result, i) => {
      if (result.status === "rejected") log.error({ model: sources[i]?.id }, messageOf(result.reason));
    });
    return;
  }
  for (const source of sources) {
    try {
      engine.register(source);
    } catch (error) {
      log.error({ model: source.id }, messageOf(error));
      continue;
    }
    if (source.problem !== undefined) log.warn({ model: source.id, problem: source.problem }, "model unusable");
    else
      log.info(
        { model: source.id, testModel: source.testModel, threads, kind: source.kind ?? "chat" },
        source.testModel
          ? "model available (TEST MODEL: random weights), loads on first use"
          : "model available, loads on first use",
      );
  }
}

const silentLog: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The first source of each id: a name found twice (discovered and pulled) is served once. */
function withoutDuplicateIds(sources: readonly ModelSource[]): ModelSource[] {
  const seen = new Set<string>();
  return sources.filter((source) => !seen.has(source.id) && seen.add(source.id));
}
