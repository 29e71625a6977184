import {
  ErrorCode,
  MemoryLimits,
  MemorySearchRequest,
  MemoryWriteRequest,
  PeerMemorySearchRequest,
  PeerSharingRequest,
  PotluckHttpError,
  ProjectShare,
  zodHook,
  type MemorySearchHit,
  type MemorySharing,
  type MemorySearchResponse,
  type MemoryStatus,
} from "@potluck/protocol";
import { jsonErrors, limitBody } from "@potluck/service";
import { Hono, type MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import { fleetSearch, type FleetPeer, type FleetRoster, type PeerSearcher } from "./fleet.js";
import type { PeerSharing } from "./sharing.js";
import type { MemoryStore, ScoredRecord } from "./store.js";

export interface MemoryRouteDeps {
  store: MemoryStore;
  machine: string;
  /** This machine's owner: its own machines share by the opt-in, other owners only by project. */
  owner: string;
  /** Read on every request (the sidecar's PeerSharing setting), so the opt-in toggles without a restart. */
  peerSearchEnabled: () => boolean;
  /** Flips the opt-in for this process (PUT /memory/peer-search). */
  setPeerSearchEnabled: (enabled: boolean) => void;
  /** The per-project grants to other owners (sharing.ts), read on every request. */
  shares: Pick<PeerSharing, "shares" | "share" | "unshare" | "allows">;
  /** Fleet scope; without it `scope: "fleet"` answers with this machine alone. */
  fleet?: { roster: FleetRoster; search: PeerSearcher };
  /** Discovered embedding models that could replace the current embedder (none when one is configured). */
  embedderOffers?: () => NonNullable<MemoryStatus["embedderOffers"]>;
}

export interface PeerMemoryRouteDeps extends Pick<
  MemoryRouteDeps,
  "store" | "machine" | "owner" | "peerSearchEnabled" | "shares"
> {
  /**
   * The shared signed-peer-request check: unsigned, unknown, stale or replayed requests get 401; sets `c.get("peer")`.
   */
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
        const body: MemorySearchResponse = {
          hits: local,
          machines: [{ machine, status: "answered", hits: local.length }],
        };
        return c.json(body);
      }
      const { scope: _scope, deadlineMs, ...peerBody } = request;
      // The query text goes only to machines allowed to answer it: own machines, and machines of
      // an owner this machine shares the named project with. Nobody else hears of the query.
      const allowed = (peer: FleetPeer) =>
        peer.owner === deps.owner || (request.project !== undefined && deps.shares.allows(peer.owner, request.project));
      const body = await fleetSearch({
        self: machine,
        local,
        roster: deps.fleet.roster,
        allowed,
        search: deps.fleet.search,
        body: peerBody,
        deadlineMs,
        limit: request.limit,
      });
      return c.json(body);
    })
    .get("/memory/status", (c) => c.json(memoryStatus(deps)))
    .get("/memory/sharing", (c) => c.json(sharingOf(deps)))
    .post("/memory/sharing/shares", validator("json", zodHook(ProjectShare)), (c) => {
      const grant = c.req.valid("json");
      if (grant.owner === deps.owner)
        throw new PotluckHttpError(
          400,
          ErrorCode.invalidRequest,
          `owner: ${grant.owner} is this machine's own owner; own machines share by the opt-in (potluck memory share on)`,
          "owner",
        );
      deps.shares.share(grant);
      return c.json(sharingOf(deps));
    })
    .delete("/memory/sharing/shares", validator("json", zodHook(ProjectShare)), (c) => {
      const grant = c.req.valid("json");
      if (!deps.shares.unshare(grant))
        throw new PotluckHttpError(
          404,
          ErrorCode.notFound,
          `project ${grant.project} is not shared with ${grant.owner}`,
          "project",
        );
      return c.json(sharingOf(deps));
    })
    .put("/memory/peer-search", validator("json", zodHook(PeerSharingRequest)), (c) => {
      deps.setPeerSearchEnabled(c.req.valid("json").enabled);
      return c.json({ enabled: deps.peerSearchEnabled() });
    })
    .get("/memory/:id", (c) => {
      const record = store.get(c.req.param("id"));
      if (record === undefined)
        throw new PotluckHttpError(404, ErrorCode.notFound, `no memory with id ${c.req.param("id")}`, "id");
      return c.json({ record });
    })
    .delete("/memory/:id", (c) => {
      if (!store.delete(c.req.param("id")))
        throw new PotluckHttpError(404, ErrorCode.notFound, `no memory with id ${c.req.param("id")}`, "id");
      return c.body(null, 204);
    });
  return jsonErrors(app);
}

/**
 * POST /peer/memory/search: read-only and signed requests only. A machine of this owner may
 * search everything while this machine has opted in; a machine of another owner may search only
 * a project named in the query and shared with its owner, and gets that project's records alone.
 * Authentication runs first, so an unsigned caller learns nothing, not even whether sharing is
 * on. Peer searches never mark records as accessed.
 */
export function peerMemoryRoutes(deps: PeerMemoryRouteDeps) {
  const app = new Hono<{ Variables: { peer?: { machine: string; owner: string } } }>()
    .use("/peer/memory/*", memoryBodyLimit)
    .use("/peer/memory/*", deps.auth)
    .post("/peer/memory/search", validator("json", zodHook(PeerMemorySearchRequest)), async (c) => {
      const request = c.req.valid("json");
      const project = scopeFor(deps, c.get("peer"), request.project);
      const scored = await deps.store.search(request.query, { ...request, project }, { touch: false });
      // The store filters by project already; a grant's boundary is checked once more on the way out.
      const hits = toHits(
        project === undefined ? scored : scored.filter((s) => s.record.project === project),
        deps.machine,
      );
      const body: MemorySearchResponse = {
        hits,
        machines: [{ machine: deps.machine, status: "answered", hits: hits.length }],
      };
      return c.json(body);
    });
  return jsonErrors(app);
}

/**
 * The project a verified caller may search (undefined: all of them, for an own machine), or the
 * refusal that says why: 503 while an own machine's opt-in is off, 403 for another owner without
 * a grant for the named project.
 */
function scopeFor(
  deps: PeerMemoryRouteDeps,
  peer: { machine: string; owner: string } | undefined,
  project: string | undefined,
): string | undefined {
  // The owner is the verified signer's roster entry's (the signature middleware set it), never the request's.
  const caller = peer?.machine;
  const owner = peer?.owner;
  if (owner === undefined)
    throw new PotluckHttpError(
      403,
      ErrorCode.forbidden,
      `the signing machine ${caller ?? "(none)"} has no owner on this machine's roster, so none of its memory is shared with it`,
    );
  if (owner === deps.owner) {
    if (!deps.peerSearchEnabled()) throw new PotluckHttpError(503, ErrorCode.unavailable, peerSearchDisabledReason);
    return project;
  }
  if (project === undefined) {
    throw new PotluckHttpError(
      403,
      "not_shared",
      `${caller} belongs to ${owner}, another owner: its searches must name a project this machine shares with ${owner}`,
      "project",
    );
  }
  if (!deps.shares.allows(owner, project)) {
    throw new PotluckHttpError(
      403,
      "not_shared",
      `project ${project} is not shared with ${owner} (the owner of ${caller}); the owner of ${deps.machine} can share it with \`potluck memory share ${project} --with ${owner}\``,
      "project",
    );
  }
  return project;
}

function sharingOf(deps: Pick<MemoryRouteDeps, "peerSearchEnabled" | "shares">): MemorySharing {
  return { peerSearchEnabled: deps.peerSearchEnabled(), shares: deps.shares.shares() };
}

/** What GET /memory/status and the capabilities report say about the store. */
export function memoryStatus(
  deps: Pick<MemoryRouteDeps, "store" | "machine" | "peerSearchEnabled" | "embedderOffers">,
): MemoryStatus {
  const counts = deps.store.counts();
  const offers = deps.embedderOffers?.() ?? [];
  return {
    machine: deps.machine,
    embedder: { id: deps.store.embedder.id, dimensions: deps.store.embedder.dimensions },
    ...counts,
    ann: deps.store.annStates().map(({ project, tier, source, indexed, rebuildReason, saveError }) => ({
      project,
      tier,
      source,
      indexed,
      rebuildReason,
      saveError,
    })),
    peerSearchEnabled: deps.peerSearchEnabled(),
    ...(offers.length === 0 ? {} : { embedderOffers: offers }),
  };
}

const memoryBodyLimit = limitBody({ bytesMax: MemoryLimits.bodyBytesMax });

function toHits(scored: readonly ScoredRecord[], machine: string): MemorySearchHit[] {
  return scored.map(({ score, record }) => ({ score, machine, record }));
}
