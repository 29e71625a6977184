import { serve } from "@hono/node-server";
import type { HttpBindings } from "@hono/node-server";
import { drainOnSignal, loadConfigOrExit } from "@potluck/service";
import { coordinatorRoster, fileRoster, PeerClient, ReplayCache } from "@potluck/peer";
import { pino } from "pino";
import { buildSidecarApp } from "./app.js";
import { loadSidecarConfig, parsePeerUrls } from "./config.js";
import { LlamaEngine } from "./inference/llama-engine.js";
import { resolveModelSources } from "./inference/model-sources.js";
import { noPeers, rosterDirectory } from "./peer/directory.js";
import { loadOrCreateIdentity } from "./peer/identity.js";
import { Router } from "./routing/router.js";
import { diagnoseWith } from "./routing/diagnose.js";
import { startHeartbeat } from "./heartbeat.js";
import { allowedCpus, pinProcessToCpu, planCpuPin } from "./cpu-pin.js";
import { connectUsagePublisher } from "./usage/nats.js";
import { natsPeerFirewallSource } from "@potluck/diagnostics";
import { createSidecarDiagnostics } from "./routes/diagnostics-wiring.js";
import { httpPeerSearcher, loadMemoryConfig, openMemory, peerMemoryEnabledFromEnv } from "./memory/index.js";

const log = pino({ name: "sidecar" });
const info = (message: string) => log.info(message);

const config = loadConfigOrExit("potluck-sidecar", () => loadSidecarConfig());
const sources = resolveSourcesOrExit();
const machine = config.POTLUCK_MACHINE;
const owner = config.POTLUCK_OWNER;
const identity = loadOrCreateIdentity(config.POTLUCK_DATA_DIR, machine, info);
const cpuPin = planCpuPin({ setting: config.POTLUCK_CPU_PIN, threads: config.POTLUCK_THREADS, models: sources.length, allowed: allowedCpus(), platform: process.platform });
if (cpuPin.cpu === undefined) log.info({ reason: cpuPin.reason }, "not pinned to a CPU");
else {
  const failed = await pinProcessToCpu(cpuPin.cpu);
  if (failed === undefined) log.info({ cpu: cpuPin.cpu, reason: cpuPin.reason }, "pinned to one CPU");
  else log.warn({ cpu: cpuPin.cpu }, `could not pin to CPU ${cpuPin.cpu}: ${failed}; running unpinned`);
}
// A roster file wins (labs, machines without a coordinator); else the coordinator's roster.
const peerAddressing = { self: machine, peerPort: config.POTLUCK_PEER_PORT, urlOverrides: parsePeerUrls(config.POTLUCK_PEER_URLS) };
// One roster source, read by the peer directory (routing, signatures, fleet search) and diagnostics.
const roster = config.POTLUCK_ROSTER_FILE !== undefined
  ? fileRoster({ path: config.POTLUCK_ROSTER_FILE, log: info })
  : config.POTLUCK_COORDINATOR_URL !== undefined
    ? coordinatorRoster({ url: config.POTLUCK_COORDINATOR_URL, log: info })
    : undefined;
const directory = roster === undefined ? noPeers : rosterDirectory(roster, peerAddressing);
// One peer client for every /peer/* call: routing, diagnostics and fleet memory search.
const peerClient = new PeerClient({ sign: identity.sign });
const engine = new LlamaEngine({ threads: config.POTLUCK_THREADS, contextSizeMax: config.POTLUCK_CONTEXT_SIZE, queueWaitingMax: config.POTLUCK_QUEUE_MAX, embedContextSize: 512 });
const usage = await connectUsagePublisher({ url: config.POTLUCK_NATS_URL, prefix: config.POTLUCK_NATS_PREFIX, log: info });
// Memory: the store replays from disk and the embedder loads now, before the first request.
const memoryConfig = loadConfigOrExit("potluck-sidecar", () => loadMemoryConfig());
const memory = await openMemory(memoryConfig, config.POTLUCK_DATA_DIR);
log.info({ embedder: memory.embedder.id, ...memory.store.counts() }, "memory store open");
// Peers' fw-watcher statuses from NATS let diagnostics read a remote firewall instead of inferring it.
const peerFirewall = natsPeerFirewallSource({ natsUrl: config.POTLUCK_NATS_URL, subjectRoot: config.POTLUCK_NATS_PREFIX, log: info });
const diagnostics = createSidecarDiagnostics({
  machine, owner, interfaceName: config.POTLUCK_INTERFACE, port: config.POTLUCK_PORT, peerPort: config.POTLUCK_PEER_PORT,
  startedAt: Date.now(), isWarm: () => warm, client: peerClient, peerFirewall,
  ...(config.POTLUCK_COORDINATOR_URL === undefined ? {} : { coordinatorUrl: config.POTLUCK_COORDINATOR_URL }),
  ...(roster === undefined ? {} : { roster }),
});
// A candidate the router cannot use is explained by the same checks `potluck doctor` runs.
const router = new Router({ machine, owner, engine, directory, client: peerClient, usage: usage.publisher, log: info, diagnose: diagnoseWith(diagnostics), headStart: config.POTLUCK_HEAD_START });

// Warm start: load every model now, not on the first request; /health says "warming" meanwhile.
let warm = false;
void Promise.allSettled(sources.map((source) => engine.load(source))).then((results) => {
  warm = true;
  results.forEach((r, i) => {
    const source = sources[i];
    if (r.status === "rejected") log.error({ model: source?.id }, r.reason instanceof Error ? r.reason.message : String(r.reason));
    else log.info({ model: source?.id, testModel: source?.testModel, threads: config.POTLUCK_THREADS }, source?.testModel === true ? "model ready (TEST MODEL: random weights)" : "model ready");
  });
});

// With a coordinator, this machine reports itself (and the WireGuard key it really uses) over NATS.
const heartbeat = config.POTLUCK_COORDINATOR_URL === undefined
  ? undefined
  : startHeartbeat({ natsUrl: config.POTLUCK_NATS_URL, prefix: config.POTLUCK_NATS_PREFIX, machine, interfaceName: config.POTLUCK_INTERFACE, status: () => (warm ? "ok" : "warming"), log: info, sign: identity.sign });

const app = buildSidecarApp({
  machine,
  owner,
  version: "0.1.0",
  startedAt: Date.now(),
  isWarm: () => warm,
  remoteAddress: (c) => (c.env as HttpBindings | undefined)?.incoming?.socket?.remoteAddress,
  engine,
  router,
  directory,
  replay: new ReplayCache(),
  usage: usage.publisher,
  memory: () => ({ peerSearchEnabled: peerMemoryEnabledFromEnv(), records: memory.store.size }),
  embedder: () => ({ id: memory.embedder.id, dimensions: memory.embedder.dimensions, state: "ready" }),
  memoryApi: {
    store: memory.store,
    // Read from the environment on every request; `potluck memory share on|off` flips it in-process.
    peerSearchEnabled: () => peerMemoryEnabledFromEnv(),
    setPeerSearchEnabled: (enabled) => {
      process.env.POTLUCK_PEER_MEMORY_ENABLED = enabled ? "1" : "0";
    },
    fleet: { roster: directory, search: httpPeerSearcher(peerClient) },
  },
  diagnostics,
});

const server = serve({ fetch: app.fetch, port: config.POTLUCK_PORT, hostname: config.POTLUCK_BIND }, (address) => {
  log.info({ port: address.port, bind: config.POTLUCK_BIND, machine, owner, identityKey: identity.publicKey, models: sources.map((s) => s.id) }, "sidecar listening");
});
drainOnSignal({
  log: info,
  close: async () => {
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    await heartbeat?.stop();
    await peerFirewall.close();
    await usage.close();
    await engine.close();
    await memory.close();
  },
});

function resolveSourcesOrExit() {
  try {
    return resolveModelSources(config.POTLUCK_MODELS, config.POTLUCK_DATA_DIR, config.POTLUCK_TINY_SEED);
  } catch (error) {
    process.stderr.write(`potluck-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
}
