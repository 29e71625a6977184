import { randomUUID } from "node:crypto";
import {
  GenerationLimits,
  PotluckHttpError,
  type InferStreamChunk,
  type LayerCode,
  type ProbeModel,
} from "@potluck/protocol";
import { PeerCallError } from "@potluck/peer";
import { EngineError, type InferenceEngine } from "../inference/engine.js";
import type { PeerDirectory, PeerRecord } from "../peer/directory.js";
import { heldStream, placeHold, publishedOf, type PublishedModel } from "../usage/hold.js";
import type { UsagePublisher } from "../usage/publisher.js";
import { runLocal } from "./local-run.js";
import { failoverRoute } from "./failover.js";
import type { Diagnose } from "./diagnose.js";
import { ConfirmedPaths, PathConfirmLimits } from "./confirmed.js";
import { headStartRoute } from "./head-start.js";
import { LastServed } from "./sticky.js";
import type {
  Candidate,
  CandidateReason,
  CandidateReport,
  ChatJob,
  PlannedRoute,
  RouteChoice,
  RouterPeerClient,
} from "./types.js";

export type {
  CandidateReason,
  CandidateReport,
  ChatJob,
  PlannedRoute,
  RouteChoice,
  RouterPeerClient,
} from "./types.js";
export { StickyLimits } from "./sticky.js";

export interface RouterDeps {
  machine: string;
  owner: string;
  engine: InferenceEngine;
  directory: PeerDirectory;
  client: RouterPeerClient;
  usage: UsagePublisher;
  log?: (message: string) => void;
  /** Diagnostics on a failed candidate: its named layer and fix replace the router's own reason. */
  diagnose?: Diagnose;
  /** False: no head start (head-start.ts); every remote job waits for its probes. Default true. */
  headStart?: boolean;
  /**
   * How long a confirmed path lets the next head-started job's first token out before that job's
   * own fresh probe answers (confirmed.ts); 0 (the default): every first token waits for its probe.
   */
  confirmedForMs?: number;
}

/** Peers considered per routing decision, so a huge roster cannot fan out without bound. */
const candidatesMax = 32;

/**
 * Picks where a prompt runs: here when the model is ready here; else an own machine (same owner)
 * with the model ready whose data plane answered a fresh probe — the one that served the model
 * last if its probe confirms it (it got the job beside the probe: head-start.ts), else the
 * fastest to answer; else a trusted peer
 * (different owner; usage is published for the ledger). A model that is available but not loaded
 * (it loads on first use, the client seeing `loading` chunks) ranks after every ready one of the
 * same kind of machine: own ready, then here or own loading, then peers ready, then peers loading.
 * Nothing suitable: a 503 listing each candidate and the layer that failed — never "no reachable
 * peer" alone.
 */
export class Router {
  private readonly lastServed = new LastServed();
  private readonly confirmed: ConfirmedPaths;

  constructor(private readonly deps: RouterDeps) {
    this.confirmed = new ConfirmedPaths(deps.confirmedForMs);
  }

  async plan(model: string, on?: string): Promise<PlannedRoute> {
    const { machine, engine } = this.deps;
    const reports: CandidateReport[] = [];
    if (on === undefined || on === machine) {
      const local = engine.state(model);
      const lazy = local !== undefined && isChat(local) && (local.state === "available" || local.state === "loading");
      if (lazy && on === machine) {
        // Pinned here: load it here (the client sees the progress).
        return failoverRoute({
          candidates: [this.localCandidate(local.testModel, notLoaded(model, local, " here"))],
          reports,
          exhausted: (all, only) => exhausted(model, all, on, only),
        });
      }
      if (lazy) {
        // Not loaded here: a machine of this owner that has it ready goes first, then this one loads it.
        const peers = await this.deps.directory.peers();
        const ranked = await this.rankPeers(model, on, peers);
        const here = this.localCandidate(local.testModel, notLoaded(model, local, " here"));
        const readyOwn = ranked.candidates.filter((c) => c.choice.kind === "own" && c.report.reason.kind === "ready");
        ranked.candidates.splice(readyOwn.length, 0, here);
        return this.decide(model, on, reports, ranked);
      }
      if (local?.state === "ready") {
        // The fast path: no probe before a local run. Peers are probed only if the local run
        // fails before its first token (and only when the caller did not pin this machine).
        const more = on === undefined ? () => this.rankPeers(model, undefined) : undefined;
        return failoverRoute({
          candidates: [this.localCandidate(local.testModel)],
          more,
          reports,
          exhausted: (all, only) => exhausted(model, all, on, only),
        });
      }
      reports.push({
        machine,
        relation: "local",
        layer: "model-runtime",
        reason: modelReason(model, local === undefined ? null : local, " here"),
      });
      if (on === machine) throw noRoute(model, reports, on);
    }
    const peers = await this.deps.directory.peers();
    const guess = this.guess(model, on, peers);
    if (guess === undefined) return this.decide(model, on, reports, await this.rankPeers(model, on, peers));
    // The probes start only once the job has been sent (headStartRoute.run): the serving machine
    // then reads the job first and its model starts while it answers the probe.
    const target = guess.peer.machine;
    const early = this.remoteCandidate(guess.peer, guess.testModel, undefined, {
      machine: target,
      relation: "own",
      layer: "ok",
      reason: { kind: "ready", text: "given the job beside its probe" },
    });
    const forget = (ruledOut: () => void) => () => {
      // The next prompt for this model gets no head start towards a machine its probe just failed.
      this.lastServed.forget(model, target);
      ruledOut();
    };
    // Confirmed moments ago: the fresh probe goes out once the first token is in (confirmed.ts).
    const confirmed = this.confirmed.fresh(target)
      ? {
          waitMs: PathConfirmLimits.probeAfterMs,
          probe: async () => (await this.check(guess.peer, model)).report.layer === "ok",
          ruledOut: () => this.lastServed.forget(model, target),
        }
      : undefined;
    return headStartRoute({
      guess: early.choice,
      start: early.start,
      ...(confirmed === undefined ? {} : { confirmed }),
      decide: async (adopt, ruledOut) =>
        this.decide(
          model,
          on,
          reports,
          await this.rankPeers(model, on, peers, { machine: target, ruledOut: forget(ruledOut) }),
          { machine: target, start: adopt },
        ),
    });
  }

  /**
   * The route once every probe has answered: the ranked candidates (with `adopt` as the start of
   * the machine that got a head start, moved to the front if its probe confirmed it), or the
   * error that names why nothing can serve.
   */
  private decide(
    model: string,
    on: string | undefined,
    reports: CandidateReport[],
    ranked: { candidates: Candidate[]; reports: CandidateReport[] },
    adopt?: { machine: string; start: Candidate["start"] },
  ): PlannedRoute {
    const confirmed = adopt === undefined ? -1 : ranked.candidates.findIndex((c) => c.choice.machine === adopt.machine);
    if (adopt !== undefined && confirmed >= 0) {
      const [candidate] = ranked.candidates.splice(confirmed, 1);
      ranked.candidates.unshift({ ...candidate!, start: adopt.start });
    }
    reports.push(...ranked.reports);
    if (on !== undefined && ranked.candidates.length === 0 && ranked.reports.length === 0) {
      reports.push({
        machine: on,
        relation: "peer",
        layer: "roster",
        reason: { kind: "not_on_roster", text: `${on} is not on this machine's roster` },
      });
      throw noRoute(model, reports, on);
    }
    if (ranked.candidates.length > 0)
      return failoverRoute({
        candidates: ranked.candidates,
        reports,
        exhausted: (all, only) => exhausted(model, all, on, only),
      });
    const everyoneAnswered = reports.every((r) => r.reason.kind === "no_model");
    if (on === undefined && everyoneAnswered) {
      // 404, as OpenAI and Ollama answer a model that does not exist (their SDKs raise NotFoundError).
      throw new PotluckHttpError(
        404,
        "model_not_found",
        `model: no machine has a model called ${JSON.stringify(model)}; this machine has ${listModels(this.deps.engine)}. See GET /v1/models`,
        "model",
      );
    }
    throw noRoute(model, reports, on);
  }

  /**
   * Probes every peer (bounded) and ranks the usable ones: own machines first (no credits spent),
   * then trusted peers, each by probe latency. `reports` holds the ones that cannot serve.
   * `early`: the machine with a head start, told at once if its probe fails (before any diagnosis).
   */
  private async rankPeers(
    model: string,
    on: string | undefined,
    roster?: PeerRecord[],
    early?: { machine: string; ruledOut: () => void },
  ): Promise<{ candidates: Candidate[]; reports: CandidateReport[] }> {
    const peers = (roster ?? (await this.deps.directory.peers()))
      .filter((p) => on === undefined || p.machine === on)
      .slice(0, candidatesMax);
    const checked = await Promise.all(
      peers.map((peer) => this.check(peer, model, peer.machine === early?.machine ? early.ruledOut : undefined)),
    );
    // Own machines first (no credits spent), a loaded model before one that must load first, then
    // the fastest probe.
    const rank = (c: (typeof checked)[number]) =>
      (c.peer.owner === this.deps.owner ? 0 : 2) + (c.report.reason.kind === "ready" ? 0 : 1);
    const usable = checked
      .filter((c) => c.report.layer === "ok")
      .sort((a, b) => rank(a) - rank(b) || a.latencyMs - b.latencyMs);
    return {
      candidates: usable.map((c) => this.remoteCandidate(c.peer, c.testModel, c.published, c.report)),
      reports: checked.filter((c) => c.report.layer !== "ok").map((c) => c.report),
    };
  }

  /**
   * The own machine to give a head start: the one the caller pinned, else the one that served
   * this model last, recently. Never a trusted peer (its work is billed) and never this machine.
   */
  private guess(
    model: string,
    on: string | undefined,
    peers: readonly PeerRecord[],
  ): { peer: PeerRecord; testModel: boolean } | undefined {
    if (this.deps.headStart === false) return undefined;
    const recent = this.lastServed.recent(model);
    const machine = on ?? recent?.machine;
    if (machine === undefined || machine === this.deps.machine) return undefined;
    const peer = peers.find((p) => p.machine === machine);
    if (peer === undefined || peer.owner !== this.deps.owner) return undefined;
    return { peer, testModel: recent?.machine === machine ? recent.testModel : false };
  }

  private localCandidate(
    testModel: boolean,
    reason: CandidateReason = { kind: "ready", text: "model ready here" },
  ): Candidate {
    const { machine, owner, engine } = this.deps;
    return {
      choice: { machine, owner, kind: "local", testModel },
      report: { machine, relation: "local", layer: "ok", reason },
      start: (job) => runLocal(engine, machine, testModel, job),
    };
  }

  /** `published`: the model as the peer's probe or capabilities gave it before the job; prices the spend event. */
  private remoteCandidate(
    peer: PeerRecord,
    testModel: boolean,
    published: PublishedModel | undefined,
    report: CandidateReport,
  ): Candidate {
    const kind = peer.owner === this.deps.owner ? "own" : "peer";
    const choice: RouteChoice = { machine: peer.machine, owner: peer.owner, kind, testModel };
    const start = async function* (this: Router, job: ChatJob): AsyncGenerator<InferStreamChunk> {
      const jobId = `job-${randomUUID()}`;
      // Every generation option travels; what stays here is this machine's own plumbing.
      const { signal: _signal, batchWindowMs: _batch, model: _model, ...options } = job;
      const request = {
        ...options,
        jobId,
        model: job.model,
        messages: [...job.messages],
        // No cap asked for: the reply runs to the end of the serving model's context, so that context
        // (published before the job) is the bound the peer holds to and the spend is clamped to.
        // A peer that did not publish one is bounded by the protocol's hard limit instead.
        maxTokens: job.maxTokens ?? published?.contextSize ?? GenerationLimits.maxTokensMax,
        requester: { machine: this.deps.machine, owner: this.deps.owner },
      };
      // Work a trusted peer does is held from this owner's account first (usage/hold.ts); an own machine's is free.
      const held = { ...request, account: this.deps.owner, servedBy: peer, published };
      const hold = kind === "own" ? undefined : await placeHold(this.deps.usage, held, { log: this.deps.log });
      if (kind !== "own" && hold === undefined)
        throw new PotluckHttpError(
          503,
          "hold_failed",
          `no hold for ${peer.machine}'s work could be published to the ledger's stream (JetStream gave no ack)`,
        );
      const stream = this.deps.client.infer(
        peer,
        hold === undefined
          ? request
          : { ...request, holdEventId: hold.eventId, ...(hold.seq === undefined ? {} : { holdSeq: hold.seq }) },
        job.signal,
      );
      const chunks = hold === undefined ? stream : heldStream(stream, held, hold, this.deps.usage, this.deps.log);
      let first = true;
      for await (const chunk of chunks) {
        // A whole reply came back over the path: as good as a probe for the next job's first token.
        if (chunk.type === "done") this.confirmed.confirm(peer.machine);
        yield chunk;
        // Marked once the first chunk was taken (the caller asked for more): a head start's early
        // first chunk is read ahead, and a job dropped after its probe failed must not mark it.
        if (first && kind === "own" && chunk.type !== "error")
          this.lastServed.served(job.model, peer.machine, testModel);
        first = false;
      }
    };
    return { choice, report, start: (job) => start.call(this, job) };
  }

  /**
   * A fresh data-plane probe of the exact path, which also carries the peer's own word on the
   * model: one signed call per candidate. A peer too old to answer for the model is asked its
   * capabilities after the probe.
   */
  private async check(
    peer: PeerRecord,
    model: string,
    onFailed?: () => void,
  ): Promise<{
    peer: PeerRecord;
    report: CandidateReport;
    latencyMs: number;
    testModel: boolean;
    published?: PublishedModel;
  }> {
    const relation = peer.owner === this.deps.owner ? "own" : "peer";
    const failed = (layer: LayerCode, reason: CandidateReason) => ({
      peer,
      report: { machine: peer.machine, relation, layer, reason } as CandidateReport,
      latencyMs: Infinity,
      testModel: false,
    });
    const ruledOut = (layer: LayerCode, reason: CandidateReason) => {
      this.confirmed.forget(peer.machine);
      onFailed?.();
      return failed(layer, reason);
    };
    try {
      const probe = await this.deps.client.probe(peer, { model });
      const { latencyMs } = probe;
      this.confirmed.confirm(peer.machine);
      const answer = probe.model ?? (await this.modelFromCapabilities(peer, model));
      const info = answer.info;
      const usable = info !== null && isChat(info) && ["ready", "available", "loading"].includes(info.state);
      if (!usable) return ruledOut("model-runtime", modelReason(model, info, " there", answer.available));
      const reason: CandidateReason =
        info.state === "ready"
          ? { kind: "ready", text: `ready, probe ${latencyMs.toFixed(1)} ms` }
          : notLoaded(model, info, ` there, probe ${latencyMs.toFixed(1)} ms`);
      return {
        peer,
        report: { machine: peer.machine, relation, layer: "ok", reason },
        latencyMs,
        testModel: info.testModel,
        published: publishedOf(info),
      };
    } catch (error) {
      const own =
        error instanceof PeerCallError
          ? { layer: error.layer, reason: error.message }
          : { layer: "data-plane" as LayerCode, reason: error instanceof Error ? error.message : String(error) };
      this.confirmed.forget(peer.machine);
      onFailed?.(); // now, not after the diagnosis below, which can take seconds
      const named = await this.deps.diagnose?.(peer.machine, model);
      if (named === undefined) return failed(own.layer, { kind: "call_failed", text: own.reason });
      this.deps.log?.(`routing: ${peer.machine} unusable at ${named.layer} (router saw: ${own.reason})`);
      return failed(named.layer, { kind: "diagnosed", text: named.reason });
    }
  }

  /** The answer a probe gives for `model`, from the capabilities of a peer whose probe did not give it. */
  private async modelFromCapabilities(peer: PeerRecord, model: string): Promise<ProbeModel> {
    const caps = await this.deps.client.capabilities(peer);
    return { info: caps.models.find((m) => m.id === model) ?? null, available: caps.models.map((m) => m.id) };
  }
}

/** A chat model, or one whose kind is not known (a sidecar older than the field). */
function isChat(info: NonNullable<ProbeModel["info"]>): boolean {
  return info.kind !== "embedding";
}

/** A usable candidate whose model must load (or finish loading) before its first token. */
function notLoaded(model: string, info: NonNullable<ProbeModel["info"]>, where: string): CandidateReason {
  if (info.state === "loading") {
    const progress = info.progress ?? 0;
    return { kind: "loading", text: `model ${model} loading${where} (${Math.round(progress * 100)}%)`, progress };
  }
  return { kind: "available", text: `model ${model} available${where}, not loaded: loads on first use` };
}

/**
 * Why a model that is not ready cannot serve: absent, loading or failed. `where` is " here" for
 * this machine and " there" for a peer, whose answer also lists what it has instead.
 */
function modelReason(
  model: string,
  info: ProbeModel["info"],
  where: " here" | " there",
  available?: readonly string[],
): CandidateReason {
  if (info === null) {
    const has = available === undefined ? " here" : ` (has ${available.join(", ") || "none"})`;
    return { kind: "no_model", text: `does not have model ${model}${has}` };
  }
  if (!isChat(info))
    return { kind: "no_model", text: `model ${model}${where} is an embedding model, not a chat model` };
  const progress = info.progress ?? 0;
  if (info.state === "loading")
    return {
      kind: "loading",
      text: `model ${model} is still loading${where === " here" ? " here" : ""} (${Math.round(progress * 100)}%)`,
      progress,
    };
  return { kind: "load_failed", text: `model ${model} failed to load${where}: ${info.reason ?? "no reason given"}` };
}

function listModels(engine: InferenceEngine): string {
  const ids = engine.list().map((m) => m.id);
  return ids.length === 0 ? "none" : ids.join(", ");
}

/** Every try failed: one candidate keeps its own error (queue_full, …); several are listed. */
function exhausted(model: string, reports: CandidateReport[], on: string | undefined, onlyError: unknown): Error {
  // The route handler maps engine and peer errors onto their HTTP status.
  if (onlyError instanceof Error) return onlyError;
  return noRoute(model, reports, on);
}

/** The 503 when nothing can serve: one line per candidate with the layer that failed. */
export function noRoute(model: string, reports: readonly CandidateReport[], on?: string): PotluckHttpError {
  const lines = reports.map((r) => `${r.machine} (${r.relation}): ${r.layer} — ${r.reason.text}`);
  const what = on === undefined ? `model ${model}` : `model ${model} on ${on}`;
  const detail =
    lines.length === 0 ? "this machine does not have it and its roster lists no other machine" : lines.join("; ");
  return new PotluckHttpError(503, "no_route", `no machine can serve ${what} right now: ${detail}`);
}

export { EngineError };
