import type { Capabilities, ModelInfo } from "@potluck/protocol";
import { PeerCallError } from "@potluck/peer";
import { Hono } from "hono";
import type { InferenceEngine } from "../inference/engine.js";
import type { PeerDirectory, PeerRecord } from "../peer/directory.js";
import { openAiErrorBody } from "./openai/errors.js";

/** The one call the household list makes to other sidecars: libs/peer's `PeerClient.capabilities`. */
export interface CapabilitiesClient {
  capabilities(peer: PeerRecord, signal?: AbortSignal): Promise<Capabilities>;
}

export interface ModelsListDeps {
  machine: string;
  owner: string;
  engine: Pick<InferenceEngine, "list">;
  directory: PeerDirectory;
  /** Absent: only this machine's models are listed (no peer calls). */
  client?: CapabilitiesClient;
  /** A shared source of the peers' answers; absent, one is made from `client`. */
  peers?: HouseholdPeers;
  now?: () => number;
}

export const ModelsListLimits = {
  /** Machines asked per list; a household is a handful, a huge roster is not fanned out to whole. */
  peersMax: 32,
  /** Peers asked at once. */
  concurrency: 8,
  /** A peer slower than this is listed as unreachable; the list never waits longer for one machine. */
  peerTimeoutMs: 2_000,
  /** Chat apps poll /v1/models; within this the household's answer is reused rather than asked again. */
  cacheMs: 3_000,
} as const;

type Relation = "local" | "own" | "peer";

/** One machine's answer, or why it gave none. */
export interface MachineModels {
  machine: string;
  owner: string;
  relation: Relation;
  status: "ok" | "unreachable";
  models: ModelInfo[];
  /** The rest of a peer's capabilities when it answered (the household page shows them). */
  about?: Pick<Capabilities, "version" | "status" | "hardware">;
  error?: { layer: string; message: string };
}

/** The peers' answers; one source serves the list and the household page, so both share its cache. */
export type HouseholdPeers = () => Promise<MachineModels[]>;

/**
 * Asks every peer at most once per `cacheMs`, however many lists and pages ask meanwhile. A
 * failure (the roster unreadable) is not cached: the next call asks again.
 */
export function householdPeers(deps: HouseholdPeersDeps): HouseholdPeers {
  const now = deps.now ?? Date.now;
  let cached: { at: number; peers: Promise<MachineModels[]> } | undefined;
  return () => {
    if (cached === undefined || now() - cached.at > ModelsListLimits.cacheMs) {
      const entry = { at: now(), peers: askPeers(deps) };
      cached = entry;
      entry.peers.catch(() => (cached === entry ? (cached = undefined) : undefined));
    }
    return cached.peers;
  };
}

type HouseholdPeersDeps = Pick<ModelsListDeps, "owner" | "directory" | "now"> & { client: CapabilitiesClient };

/**
 * GET /v1/models: every model in the household, OpenAI's list shape. Each model appears once,
 * with `potluck.machine` the place a request for it would go first (here, else a machine where it
 * is ready, own machines before trusted peers) and `potluck.locations` every machine that has
 * it. `potluck.machines` at the top says which machines answered; one that did not is listed as
 * unreachable with the layer that failed, and the list still answers. `?scope=local` lists only
 * this machine (no peer calls).
 */
export function modelsListRoutes(deps: ModelsListDeps) {
  const peers =
    deps.peers ?? (deps.client === undefined ? undefined : householdPeers({ ...deps, client: deps.client }));
  const machinesFor = async (scope: string | undefined): Promise<MachineModels[]> => {
    const local: MachineModels = {
      machine: deps.machine,
      owner: deps.owner,
      relation: "local",
      status: "ok",
      models: deps.engine.list(),
    };
    return scope === "local" || peers === undefined ? [local] : [local, ...(await peers())];
  };
  const app = new Hono().get("/v1/models", async (c) => {
    const machines = await machinesFor(c.req.query("scope"));
    return c.json({
      object: "list",
      data: listEntries(machines),
      potluck: {
        machines: machines.map((m) => ({
          machine: m.machine,
          owner: m.owner,
          relation: m.relation,
          status: m.status,
          models: m.models.length,
          ...(m.error === undefined ? {} : { error: m.error }),
        })),
      },
    });
  });
  // OpenAI's "retrieve model" (`client.models.retrieve(id)`): the same entry as in the list. Ids
  // may hold "/" (a Hugging Face path) and ":" (an Ollama tag), so the id is the rest of the path.
  app.get("/v1/models/:id{.+}", async (c) => {
    const id = decodeURIComponent(c.req.param("id"));
    const entry = listEntries(await machinesFor(c.req.query("scope"))).find((m) => m.id === id);
    if (entry !== undefined) return c.json(entry);
    const body = openAiErrorBody(404, {
      code: "model_not_found",
      message: `The model ${JSON.stringify(id)} does not exist on any machine of this household; see GET /v1/models`,
      field: "model",
    });
    return c.json(body, 404);
  });
  return app;
}

/** Every peer's capabilities, at most `concurrency` at a time, each within its own timeout. */
async function askPeers(deps: HouseholdPeersDeps): Promise<MachineModels[]> {
  const client = deps.client;
  const roster = (await deps.directory.peers()).slice(0, ModelsListLimits.peersMax);
  const results: MachineModels[] = new Array(roster.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < roster.length; i = next++) {
      const peer = roster[i]!;
      const base = { machine: peer.machine, owner: peer.owner, relation: relationOf(peer, deps.owner) };
      try {
        const caps = await client.capabilities(peer, AbortSignal.timeout(ModelsListLimits.peerTimeoutMs));
        const about = { version: caps.version, status: caps.status, hardware: caps.hardware };
        results[i] = { ...base, status: "ok", models: caps.models, about };
      } catch (error) {
        const layer = error instanceof PeerCallError ? error.layer : "data-plane";
        const message = error instanceof Error ? error.message : String(error);
        results[i] = { ...base, status: "unreachable", models: [], error: { layer, message } };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(ModelsListLimits.concurrency, roster.length) }, worker));
  return results;
}

function relationOf(peer: PeerRecord, owner: string): Relation {
  return peer.owner === owner ? "own" : "peer";
}

const stateRank: Record<ModelInfo["state"], number> = { ready: 0, loading: 1, available: 2, failed: 3 };
const relationRank: Record<Relation, number> = { local: 0, own: 1, peer: 2 };

/** One entry per model id; its first location is where routing would look first. */
function listEntries(machines: readonly MachineModels[]) {
  const byId = new Map<string, Array<{ at: MachineModels; info: ModelInfo }>>();
  for (const at of machines)
    for (const info of at.models) byId.set(info.id, [...(byId.get(info.id) ?? []), { at, info }]);
  return [...byId.entries()].map(([id, found]) => {
    const sorted = found.sort(
      (a, b) =>
        Number(a.at.relation !== "local") - Number(b.at.relation !== "local") ||
        stateRank[a.info.state] - stateRank[b.info.state] ||
        relationRank[a.at.relation] - relationRank[b.at.relation],
    );
    const best = sorted[0]!;
    const m = best.info;
    return {
      id,
      object: "model",
      created: 0,
      owned_by: m.testModel ? `${best.at.machine} (TEST MODEL: random weights, gibberish output)` : best.at.machine,
      potluck: {
        ...location(best.at, m),
        test_model: m.testModel,
        context_size: m.contextSize,
        kind: m.kind,
        source: m.source,
        size_bytes: m.sizeBytes,
        family: m.family,
        quantization: m.quantization,
        parameters: m.parameters,
        locations: sorted.map(({ at, info }) => location(at, info)),
      },
    };
  });
}

function location(at: MachineModels, m: ModelInfo) {
  return {
    machine: at.machine,
    owner: at.owner,
    relation: at.relation,
    state: m.state,
    progress: m.progress,
    reason: m.reason,
    runtime: m.runtime,
  };
}
