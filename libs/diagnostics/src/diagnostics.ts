import type {
  DiagnosticsFixResult,
  DiagnosticsOverview,
  DiagnosticsReport,
  FixAction,
  LayerCode,
  LayerResult,
} from "@potluck/protocol";
import type { Check, CheckRegistry, FixContext } from "./checks.js";
import type { Details } from "./detail.js";
import { fixContext, type LayerProbe, type Learned, type Outcome, type Probes, type Run } from "./layer-probes/run.js";
import { ProbeTable } from "./layer-probes/table.js";
import { DirectRtt } from "./direct-rtt.js";
import { buildRegistry } from "./layers.js";
import { firewallNotApplicable } from "./platform.js";
import { DiagnosticsLimits, type DiagnosticsBudget } from "./limits.js";
import { systemClock, type Clock } from "./probes.js";
import { VisibilityTracker } from "./visibility.js";

export interface DiagnosticsOptions {
  /** This machine's roster name. */
  from: string;
  interfaceName: string;
  /** This machine's sidecar port (the local path is checked over loopback). */
  localPort: number;
  /** The port peer sidecars listen on (the roster carries mesh IPs, not ports). */
  peerPort: number;
  probes: Probes;
  clock?: Clock;
  registry?: CheckRegistry;
  /** One probe per check of `registry` (default: Potluck's nine layers, see `layerProbes`). */
  layerProbes?: readonly LayerProbe[];
  limits?: Partial<DiagnosticsBudget>;
  /** Endpoints known to be relays, so the path layer can say "relayed". */
  relays?: readonly string[];
  /** A successful first token is reused this long unless the caller forces a fresh check. */
  firstTokenReuseMs?: number;
  /** The OS this runs on (default: this process's); the fw-watcher is consulted on Linux only. */
  platform?: NodeJS.Platform;
}

export interface CheckOptions {
  /** Skip the cache and any in-flight check: routing a prompt needs the path as it is now. */
  forceFresh?: boolean;
  /** The model to check; default: the first ready model the peer reports. */
  model?: string;
  /**
   * false: a model that is available but not loaded is not loaded just to check its first token
   * (that layer is skipped, saying so). Default true: the check does what a prompt would.
   */
  loadModels?: boolean;
}

interface Cached {
  at: number;
  report: Promise<DiagnosticsReport>;
}

/** A generation is the expensive probe: reuse a success this long unless forced fresh. */
const firstTokenReuseMsDefault = 30_000;

/**
 * Answers "can a prompt reach that model and stream a token back right now?" for one path, layer
 * by layer, with the hygiene of field note 1: brief caching, failures shown only once they
 * persist, recovery at once, and downstream layers suppressed behind the upstream failure.
 */
export class Diagnostics {
  readonly registry: CheckRegistry;
  readonly #probes: ProbeTable;
  readonly #clock: Clock;
  readonly #limits: DiagnosticsBudget;
  readonly #visibility: VisibilityTracker;
  readonly #cache = new Map<string, Cached>();
  readonly #firstTokens = new Map<string, { at: number; servedBy: string }>();

  /** Why the fw-watcher is not consulted on this OS, or undefined on Linux. */
  readonly #firewallNotApplicable: string | undefined;
  /** The probes runs use: without the fw-watcher where it is not applicable. */
  readonly #io: Probes;
  /** Direct round trips per peer, to price a path relayed via the hub. */
  readonly #directRtt: DirectRtt;

  constructor(private readonly options: DiagnosticsOptions) {
    this.registry = options.registry ?? buildRegistry();
    this.#probes = new ProbeTable(this.registry, options.layerProbes);
    this.#clock = options.clock ?? systemClock;
    this.#limits = { ...DiagnosticsLimits, ...options.limits };
    this.#visibility = new VisibilityTracker(this.#limits.cacheEntriesMax);
    this.#firewallNotApplicable = firewallNotApplicable(options.platform ?? process.platform);
    const { firewall: _unused, ...withoutFirewall } = options.probes;
    const io = this.#firewallNotApplicable === undefined ? options.probes : withoutFirewall;
    this.#directRtt = new DirectRtt(this.#clock, this.#limits.smallProbeBytes, this.#limits.cacheEntriesMax);
    this.#io = { ...io, peer: this.#directRtt.timed(io.peer) };
  }

  /** The path from this machine to `peer` (this machine's own name checks the local path). */
  check(peer: string, options: CheckOptions = {}): Promise<DiagnosticsReport> {
    const key = `${peer}\u0000${options.model ?? ""}\u0000${options.loadModels === false ? "noload" : ""}`;
    const now = this.#clock.now();
    const cached = this.#cache.get(key);
    if (options.forceFresh !== true && cached !== undefined && now - cached.at < this.#limits.cacheTtlMs) {
      return cached.report.then((report) => ({ ...report, cached: true }));
    }
    const report = this.#run(peer, options);
    this.#cache.delete(key);
    this.#cache.set(key, { at: now, report });
    while (this.#cache.size > this.#limits.cacheEntriesMax) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    // A failed run must not be served from the cache.
    report.catch(() => this.#cache.delete(key));
    return report;
  }

  /** Every path: this machine first, then each roster peer (bounded by `peersMax`). */
  async overview(options: CheckOptions = {}): Promise<DiagnosticsOverview> {
    const names = [this.options.from, ...(await this.#peerNames())];
    const reports = await mapBounded(names, this.#limits.concurrencyMax, (name) => this.check(name, options));
    return { from: this.options.from, reports, generatedAt: new Date(this.#clock.now()).toISOString() };
  }

  /** Applies an offered fix. Callers must have asked the person first; the route requires `consent: true`. */
  async applyFix(action: FixAction): Promise<DiagnosticsFixResult> {
    if (this.#firewallNotApplicable !== undefined) return { action, ok: false, message: this.#firewallNotApplicable };
    const firewall = this.#io.firewall;
    if (firewall === undefined)
      return {
        action,
        ok: false,
        message: `no fw-watcher runs on ${this.options.from}; install it with: sudo potluck-fw-watcher --install --interface ${this.options.interfaceName}`,
      };
    try {
      const status = await firewall.reapply(AbortSignal.timeout(this.#limits.firewallReapplyTimeoutMs));
      this.#cache.clear();
      const missing = status.rules.filter((rule) => rule.state === "missing").length;
      return {
        action,
        ok: status.intact,
        message: status.intact
          ? `the ${status.interfaceName} accept rules are in place`
          : `reapplied, but ${missing} rule(s) are still missing: ${status.lastError ?? "see the fw-watcher log"}`,
      };
    } catch (error) {
      return {
        action,
        ok: false,
        message: `asking the fw-watcher to reapply: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }

  async #peerNames(): Promise<string[]> {
    const roster = this.options.probes.roster;
    if (roster === undefined) return [];
    try {
      const entries = await roster.list(AbortSignal.timeout(this.#limits.coordinatorTimeoutMs));
      return entries
        .map((e) => e.name)
        .filter((name) => name !== this.options.from)
        .slice(0, this.#limits.peersMax);
    } catch {
      // The report for this machine shows why the roster could not be read.
      return [];
    }
  }

  async #run(peer: string, options: CheckOptions): Promise<DiagnosticsReport> {
    const run = this.#newRun(peer, options);
    // The local path goes over loopback; a peer's host becomes its mesh IP once the roster names it.
    let learned: Learned = { target: { name: peer, host: "127.0.0.1", port: run.path.peerPort } };
    let detail: Details = {};
    let ctx: FixContext = fixContext(run, learned, detail);
    const layers: LayerResult[] = [];
    const blockedBy = new Map<LayerCode, LayerCode>();
    for (const check of this.registry.ordered()) {
      const root = check.dependsOn.map((dep) => blockedBy.get(dep)).find((code) => code !== undefined);
      if (root !== undefined) {
        this.#visibility.clear(peer, check.code);
        blockedBy.set(check.code, root);
        layers.push(this.#suppressed(check, root, layers));
        continue;
      }
      const started = this.#clock.now();
      const step = await this.#probes.probe(check, run, learned).catch((error: unknown): never => {
        throw new Error(
          `checking ${check.code} for ${peer}: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      });
      learned = { ...learned, ...step.learned };
      detail = { ...detail, ...step.detail };
      ctx = fixContext(run, learned, detail);
      const { outcome } = step;
      if (outcome.kind === "fail" && outcome.layer !== undefined && outcome.layer !== check.code) {
        // A later probe showed an earlier layer is the broken one (e.g. a silent peer behind a recent
        // handshake): that layer takes the failure, everything after it is suppressed behind it.
        this.#blameUpstream(outcome.layer, outcome, ctx, layers, blockedBy, started);
        this.#visibility.clear(peer, check.code);
        layers.push(this.#suppressed(check, outcome.layer, layers));
        blockedBy.set(check.code, outcome.layer);
        continue;
      }
      const result = this.#result(check, outcome, ctx, this.#clock.now() - started, started);
      if (result.status === "failed" || result.status === "pending") blockedBy.set(check.code, check.code);
      layers.push(result);
    }
    const passed = (code: LayerCode) => layers.find((l) => l.code === code)?.status === "ok";
    const direct = !run.self && learned.relayVia === undefined && passed("path") && passed("data-plane");
    this.#directRtt.settle(peer, learned.target.host, direct);
    if (ctx.model !== undefined && layers.at(-1)?.status === "ok" && run.recentFirstToken === undefined) {
      this.#firstTokens.set(`${peer}\u0000${ctx.model}`, {
        at: this.#clock.now(),
        servedBy: ctx.detail.servedBy ?? peer,
      });
    }
    const usable = layers.every((l) => l.status === "ok" || l.status === "warning" || l.status === "skipped");
    const report: DiagnosticsReport = {
      from: this.options.from,
      peer,
      usable,
      firstFailure: layers.find((l) => l.status === "failed")?.code ?? null,
      layers,
      generatedAt: new Date(this.#clock.now()).toISOString(),
      cached: false,
    };
    if (ctx.model !== undefined) report.model = ctx.model;
    return report;
  }

  #newRun(peer: string, options: CheckOptions): Run {
    const self = peer === this.options.from;
    const coordinatorUrl = this.options.probes.coordinator?.url;
    const path = {
      from: this.options.from,
      peer,
      interfaceName: this.options.interfaceName,
      localPort: this.options.localPort,
      peerPort: self ? this.options.localPort : this.options.peerPort,
      ...(coordinatorUrl === undefined ? {} : { coordinatorUrl }),
    };
    const visibleAt = (layer: LayerCode) => {
      const since = this.#visibility.since(peer, layer);
      return since === undefined ? undefined : since + this.registry.get(layer).timeToVisibleMs;
    };
    const directRtt = this.#directRtt.get(peer);
    const recentFirstToken = options.forceFresh === true ? undefined : this.#recentFirstToken(peer, options.model);
    while (this.#firstTokens.size > this.#limits.cacheEntriesMax) {
      const oldest = this.#firstTokens.keys().next().value;
      if (oldest === undefined) break;
      this.#firstTokens.delete(oldest);
    }
    return {
      path,
      self,
      clock: this.#clock,
      limits: this.#limits,
      probes: this.#io,
      relays: new Set(this.options.relays ?? []),
      ...(directRtt === undefined ? {} : { directRtt }),
      visibleAt,
      ...(options.model === undefined ? {} : { requestedModel: options.model }),
      ...(recentFirstToken === undefined ? {} : { recentFirstToken }),
      loadModels: options.loadModels !== false,
      os: this.options.platform ?? process.platform,
    };
  }

  #recentFirstToken(peer: string, model: string | undefined): Run["recentFirstToken"] {
    const reuseMs = this.options.firstTokenReuseMs ?? firstTokenReuseMsDefault;
    const recent = [...this.#firstTokens.entries()].find(
      ([key]) => key.startsWith(`${peer}\u0000`) && (model === undefined || key.endsWith(`\u0000${model}`)),
    );
    if (recent === undefined || this.#clock.now() - recent[1].at >= reuseMs) return undefined;
    return { servedBy: recent[1].servedBy, ageMs: this.#clock.now() - recent[1].at };
  }

  #blameUpstream(
    code: LayerCode,
    outcome: Outcome,
    ctx: FixContext,
    layers: LayerResult[],
    blockedBy: Map<LayerCode, LayerCode>,
    started: number,
  ): void {
    const index = layers.findIndex((l) => l.code === code);
    if (index < 0) throw new Error(`layer ${code} was blamed before it ran`);
    layers[index] = this.#result(this.registry.get(code), outcome, ctx, this.#clock.now() - started, started);
    blockedBy.set(code, code);
    for (let i = index + 1; i < layers.length; i++) {
      const later = this.registry.get(layers[i]!.code);
      this.#visibility.clear(ctx.peer, later.code);
      layers[i] = this.#suppressed(later, code, layers);
      blockedBy.set(later.code, code);
    }
  }

  /** `observedAt`: when the probe that saw the failure started; the failure has lasted at least since then. */
  #result(check: Check, outcome: Outcome, ctx: FixContext, latencyMs: number, observedAt: number): LayerResult {
    const base = {
      code: check.code,
      title: check.title,
      severity: check.severity,
      latencyMs: Math.max(0, latencyMs),
      checkedAt: new Date(this.#clock.now()).toISOString(),
    };
    const peer = ctx.peer;
    if (outcome.kind === "ok") {
      this.#visibility.clear(peer, check.code);
      return { ...base, status: "ok", message: check.okMessage(ctx) };
    }
    if (outcome.kind === "skipped") {
      this.#visibility.clear(peer, check.code);
      return { ...base, status: "skipped", message: outcome.message };
    }
    const spec = this.registry.failure(check.code, outcome.failure);
    const described = { ...base, failure: outcome.failure, message: spec.message(ctx), fix: spec.fix(ctx) };
    if (spec.warningOnly === true) {
      this.#visibility.clear(peer, check.code);
      return { ...described, status: "warning" };
    }
    const brokenForMs = this.#visibility.failing(peer, check.code, observedAt, this.#clock.now());
    const visible = brokenForMs >= check.timeToVisibleMs;
    const result: LayerResult = {
      ...described,
      status: visible ? "failed" : "pending",
      brokenForMs,
      timeToVisibleMs: check.timeToVisibleMs,
    };
    if (spec.offerFix !== undefined && outcome.offerFix !== false) result.offerFix = spec.offerFix;
    if (!visible)
      result.message = `possible ${outcome.failure}, confirming (${Math.round(brokenForMs / 1000)} of ${check.timeToVisibleMs / 1000} s): ${result.message}`;
    return result;
  }

  #suppressed(check: Check, root: LayerCode, earlier: LayerResult[]): LayerResult {
    const upstream = earlier.find((l) => l.code === root);
    const why = upstream?.status === "pending" ? "is being confirmed" : `failed (${upstream?.failure ?? "unknown"})`;
    return {
      code: check.code,
      title: check.title,
      severity: check.severity,
      status: "suppressed",
      suppressedBy: root,
      message: `suppressed: ${upstream?.title ?? root} ${why}`,
      checkedAt: new Date(this.#clock.now()).toISOString(),
    };
  }
}

/** Runs `fn` over `items` with at most `limit` in flight, keeping order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
