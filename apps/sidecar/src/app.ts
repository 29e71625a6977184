import { SidecarLimits, type Health } from "@potluck/protocol";
import { jsonErrors, limitBody } from "@potluck/service";
import { Hono } from "hono";
import { capabilitiesOf, type CapabilitiesDeps } from "./capabilities.js";
import type { InferenceEngine } from "./inference/engine.js";
import { peerAccess } from "./middleware/peer-access.js";
import type { PeerDirectory } from "./peer/directory.js";
import { peerSignature } from "./peer/signature.js";
import type { ReplayCache } from "@potluck/peer";
import { openAiRoutes } from "./routes/openai/index.js";
import { ollamaRoutes, type ModelPuller } from "./routes/ollama/index.js";
import { SidecarMetrics } from "./metrics.js";
import { pulledModelRoutes } from "./models/routes.js";
import type { PulledModels } from "./models/puller.js";
import { householdPeers, modelsListRoutes, type CapabilitiesClient } from "./routes/models-list.js";
import { peerRoutes } from "./routes/peer.js";
import { diagnosticsRoutes, type DiagnosticsService } from "./routes/diagnostics.js";
import { dashboardRoutes } from "./dashboard/routes.js";
import { memoryRoutes, peerMemoryRoutes, type MemoryRouteDeps } from "./memory/routes.js";
import type { Router } from "./routing/router.js";
import type { UsagePublisher } from "./usage/publisher.js";
import { noHoldChecker, type HoldChecker } from "./usage/hold-check.js";

export interface SidecarDeps {
  machine: string;
  owner: string;
  version: string;
  startedAt: number;
  /** True once models and the embedder have loaded; /health says "warming" until then. */
  isWarm: () => boolean;
  /** The caller's address; `app.request()` in tests has none and counts as loopback-less. */
  remoteAddress: Parameters<typeof peerAccess>[0]["remoteAddress"];
  /** POTLUCK_API_KEY: opens the local API to callers that present it (see middleware/peer-access.ts). */
  apiKey?: string;
  engine: InferenceEngine;
  router: Pick<Router, "plan">;
  /** Who is on the mesh and their identity keys (static roster file until the coordinator lands). */
  directory: PeerDirectory;
  /** Nonces seen on signed peer requests; one per process. */
  replay: ReplayCache;
  usage: UsagePublisher;
  /** Checks a requester's hold before a job for another owner (usage/hold-check.ts); absent: such jobs are refused. */
  holds?: HoldChecker;
  /** Optional parts other issues wire in (memory, embedder) for capabilities. */
  memory?: CapabilitiesDeps["memory"];
  embedder?: CapabilitiesDeps["embedder"];
  /** GET /diagnostics[/:peer] and POST /diagnostics/fix (loopback only); the /dashboard page shows them. */
  diagnostics?: DiagnosticsService;
  /** /memory* (loopback) and POST /peer/memory/search (signed, opt-in); see memory/routes.ts. */
  memoryApi?: Omit<MemoryRouteDeps, "machine">;
  /** Downloads models for Ollama's /api/pull; absent: `pulls`' puller, and with neither /api/pull answers 501. */
  puller?: ModelPuller;
  /** GET /metrics (loopback); absent: a registry of the app's own. */
  metrics?: SidecarMetrics;
  /** Peers' capabilities for the household's GET /v1/models; absent: this machine's models only. */
  peerCapabilities?: CapabilitiesClient;
  /** POST /v1/potluck/models/pull, GET …/pulled, DELETE …/:id (loopback). */
  pulls?: PulledModels;
}

/**
 * The sidecar's HTTP surface, built from injected dependencies (no port, no globals): a
 * composition of sub-apps, one `app.route()` per domain.
 */
export function buildSidecarApp(deps: SidecarDeps) {
  const capabilities = () => capabilitiesOf(deps);
  const metrics = deps.metrics ?? new SidecarMetrics(deps.engine);
  const router = metrics.instrumentRouter(deps.router);
  const puller = deps.puller ?? deps.pulls?.asModelPuller();
  // One fan-out to the peers, shared by GET /v1/models and the household page.
  const peers = deps.peerCapabilities ? householdPeers({ ...deps, client: deps.peerCapabilities }) : undefined;
  // One verifier for every /peer/* route (memory search and diagnostics mount it too).
  const peerAuth = peerSignature({
    self: deps.machine,
    lookupSigner: (machine) => deps.directory.signer(machine),
    replay: deps.replay,
  });
  const app = new Hono()
    .use(
      peerAccess({ remoteAddress: deps.remoteAddress, ...(deps.apiKey === undefined ? {} : { apiKey: deps.apiKey }) }),
    )
    // Every body is bounded while it streams in, before any route reads it: the signature check
    // on /peer/* hashes the whole body, so an unbounded chunked body would be held in full first.
    // Routes with smaller bodies bound them again more tightly.
    .use(limitBody({ bytesMax: SidecarLimits.bodyBytesMax }))
    .get("/health", (c) => {
      const body: Health = {
        status: deps.isWarm() ? "ok" : "warming",
        machine: deps.machine,
        uptimeS: (Date.now() - deps.startedAt) / 1000,
      };
      return c.json(body);
    })
    .get("/metrics", async (c) =>
      c.body(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }),
    )
    // Before the OpenAI routes: its GET /v1/models (the household's) answers first.
    .route("/", modelsListRoutes({ ...deps, ...(peers === undefined ? {} : { peers }) }))
    .route("/", openAiRoutes({ ...deps, router }))
    .route("/", ollamaRoutes({ ...deps, router, ...(puller === undefined ? {} : { puller }) }))
    .route("/", peerRoutes({ ...deps, holds: deps.holds ?? noHoldChecker, capabilities, auth: peerAuth, metrics }))
    .route("/", dashboardRoutes({ capabilities, ...(peers === undefined ? {} : { peers }) }));
  if (deps.diagnostics !== undefined) app.route("/", diagnosticsRoutes(deps.diagnostics));
  if (deps.pulls !== undefined) app.route("/", pulledModelRoutes(deps.pulls));
  if (deps.memoryApi !== undefined)
    app
      .route("/", memoryRoutes({ ...deps.memoryApi, machine: deps.machine }))
      .route("/", peerMemoryRoutes({ ...deps.memoryApi, machine: deps.machine, auth: peerAuth }));
  return jsonErrors(app);
}

export type SidecarApp = ReturnType<typeof buildSidecarApp>;
