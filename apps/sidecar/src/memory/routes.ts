import {
  ErrorCode,
  MemoryLimits,
  MemorySearchRequest,
  MemoryWriteRequest,
  PeerMemorySearchRequest,
  PeerSharingRequest,
  PotluckHttpError,
  zodHook,
  type MemorySearchHit,
  type MemorySearchResponse,
  type MemoryStatus,
} from "@potluck/protocol";
import { jsonErrors, limitBody } from "@potluck/service";
import { Hono, type MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import { fleetSearch, type FleetRoster, type PeerSearcher } from "./fleet.js";
import type { MemoryStore, ScoredRecord } from "./store.js";

export interface MemoryRouteDeps {
  store: MemoryStore;
  machine: string;
  /** Read on every request (the sidecar's PeerSharing setting), so the opt-in toggles without a restart. */
  peerSearchEnabled: () => boolean;
  /** Flips the opt-in for this process (PUT /memory/peer-search). */
  setPeerSearchEnabled: (enabled: boolean) => void;
  /** Fleet scope; without it `scope: "fleet"` answers with this machine alone. */
  fleet?: { roster: FleetRoster; search: PeerSearcher };
}

export interface PeerMemoryRouteDeps {
  store: MemoryStore;
  machine: string;
  peerSearchEnabled: () => boolean;
  /** The shared signed-peer-request check: unsigned, unknown, stale or replayed requests get 401. */
  auth: MiddlewareHandler;
}

/** Why peer memory search is refused while the machine has not opted in. */
export const peerSearchDisabledReason =
  "peer memory search is opt-in and disabled on this machine; set POTLUCK_PEER_MEMORY_ENABLED=1 (or run `potluck memory share on` there) to let your own machines search it";

/**
 * The local memory API (loopback only: the sidecar's peer-access middleware refuses off-box
 * callers before these run). Writes stay here; nothing on the peer surface can reach them.
 */
export function memoryRoutes(deps: MemoryRouteDeps) {
  const { store, machine } = deps;
  const app = new Hono()
    .use("/memory", memoryBodyLimit)
    .use("/memory/*", memoryBodyLimit)
    .post("/memory", validator("json", zodHook(MemoryWriteRequest)), async (c) => {
      const record = await store.add(c.req.valid("json"));
      return c.json({ record }, 201);
    })
    .post("/memory/search", validator("json", zodHook(MemorySearchRequest)), async (c) => {
      const request = c.req.valid("json");
      const local = toHits(await store.search(request.query, request, { touch: true }), machine);
      if (request.scope === "local" || deps.fleet === undefined) {
        const body: MemorySearchResponse = { hits: local, machines: [{ machine, status: "answered", hits: local.length }] };
        return c.json(body);
      }
      const { scope: _scope, deadlineMs, ...peerBody } = request;
      const body = await fleetSearch({ self: machine, local, roster: deps.fleet.roster, search: deps.fleet.search, body: peerBody, deadlineMs, limit: request.limit });
      return c.json(body);
    })
    .get("/memory/status", (c) => c.json(memoryStatus(deps)))
    .put("/memory/peer-search", validator("json", zodHook(PeerSharingRequest)), (c) => {
      deps.setPeerSearchEnabled(c.req.valid("json").enabled);
      return c.json({ enabled: deps.peerSearchEnabled() });
    })
    .get("/memory/:id", (c) => {
      const record = store.get(c.req.param("id"));
      if (record === undefined) throw new PotluckHttpError(404, ErrorCode.notFound, `no memory with id ${c.req.param("id")}`, "id");
      return c.json({ record });
    })
    .delete("/memory/:id", (c) => {
      if (!store.delete(c.req.param("id"))) throw new PotluckHttpError(404, ErrorCode.notFound, `no memory with id ${c.req.param("id")}`, "id");
      return c.body(null, 204);
    });
  return jsonErrors(app);
}

/**
 * POST /peer/memory/search: read-only, signed requests only, and only while this machine has
 * opted in. Authentication runs first, so an unsigned caller learns nothing, not even whether
 * sharing is on. Peer searches never mark records as accessed.
 */
export function peerMemoryRoutes(deps: PeerMemoryRouteDeps) {
  const app = new Hono()
    .use("/peer/memory/*", memoryBodyLimit)
    .use("/peer/memory/*", deps.auth)
    .post(
      "/peer/memory/search",
      async (c, next) => {
        if (!deps.peerSearchEnabled()) throw new PotluckHttpError(503, ErrorCode.unavailable, peerSearchDisabledReason);
        await next();
      },
      validator("json", zodHook(PeerMemorySearchRequest)),
      async (c) => {
        const request = c.req.valid("json");
        const hits = toHits(await deps.store.search(request.query, request, { touch: false }), deps.machine);
        const body: MemorySearchResponse = { hits, machines: [{ machine: deps.machine, status: "answered", hits: hits.length }] };
        return c.json(body);
      },
    );
  return jsonErrors(app);
}

/** What GET /memory/status and the capabilities report say about the store. */
export function memoryStatus(deps: Pick<MemoryRouteDeps, "store" | "machine" | "peerSearchEnabled">): MemoryStatus {
  const counts = deps.store.counts();
  return {
    machine: deps.machine,
    embedder: { id: deps.store.embedder.id, dimensions: deps.store.embedder.dimensions },
    ...counts,
    ann: deps.store.annStates().map(({ project, tier, source, indexed, rebuildReason, saveError }) => ({ project, tier, source, indexed, rebuildReason, saveError })),
    peerSearchEnabled: deps.peerSearchEnabled(),
  };
}

const memoryBodyLimit = limitBody({ bytesMax: MemoryLimits.bodyBytesMax });

function toHits(scored: readonly ScoredRecord[], machine: string): MemorySearchHit[] {
  return scored.map(({ score, record }) => ({ score, machine, record }));
}
