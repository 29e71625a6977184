import type { LayerCode, ModelInfo, RosterEntry } from "@potluck/protocol";
import type { Check, FixContext } from "../checks.js";
import type { DetailKey, Details } from "../detail.js";
import type { Failure } from "../layers.js";
import type { DiagnosticsBudget } from "../limits.js";
import type {
  Clock,
  CoordinatorProbe,
  FirewallProbe,
  LocalProbe,
  PeerClient,
  PeerFirewallSource,
  PeerTarget,
  RosterSource,
  SelfClient,
  TunnelPeer,
  TunnelReader,
  UnderlayProbe,
} from "../probes.js";

/** What one layer's probe concluded. A failure names one of the layer's registered failures. */
export type Outcome =
  | { kind: "ok" }
  | { kind: "skipped"; message: string }
  | { kind: "fail"; failure: Failure; offerFix?: boolean; layer?: LayerCode };

export interface Probes {
  local: LocalProbe;
  coordinator?: CoordinatorProbe;
  roster?: RosterSource;
  tunnel: TunnelReader;
  peer: PeerClient;
  firewall?: FirewallProbe;
  /** The local report's model path; without it the local path goes through the peer API over loopback. */
  self?: SelfClient;
  /** Liveness evidence from the peer's on-link underlay address; without it, only WireGuard's counters tell. */
  underlay?: UnderlayProbe;
  /** The peers' fw-watcher statuses (NATS); without it, a remote firewall is inferred, never read. */
  peerFirewall?: PeerFirewallSource;
}

/** The names and ports of the path a run checks: a fix context before any probe learned anything. */
export type PathNames = Readonly<Omit<FixContext, "detail" | "meshIp" | "model">>;

/** What a run knows before its first probe. No probe changes it. */
export interface Run {
  readonly path: PathNames;
  /** The path is this machine's own: no mesh hop to check. */
  readonly self: boolean;
  readonly probes: Probes;
  readonly clock: Clock;
  readonly limits: DiagnosticsBudget;
  readonly relays: ReadonlySet<string>;
  readonly requestedModel?: string;
  /** The last small probe round trip to the peer over a direct path (see Diagnostics), to price a relay. */
  readonly directRtt?: { ms: number; ageMs: number };
  /** Reuse of a recent first token (see Diagnostics); undefined forces a generation. */
  readonly recentFirstToken?: { servedBy: string; ageMs: number };
  /** false: the first-token check does not load a model that is only available (CheckOptions.loadModels). */
  readonly loadModels: boolean;
  /** This machine's OS, for the fixes that run here. */
  readonly os: string;
  /** When a layer already failing on this path turns visible (its streak's start plus its time-to-visible). */
  visibleAt(layer: LayerCode): number | undefined;
}

/**
 * What earlier layers learned that later ones need. A probe returns what it learned in its step
 * and the runner hands the union to every probe after it; no probe writes to another's state.
 */
export interface Learned {
  /** Where the peer's sidecar is reached: loopback at first, the peer's mesh IP once the roster names it. */
  readonly target: PeerTarget;
  /** roster: the peer's entry. */
  readonly entry?: RosterEntry;
  /**
   * tunnel: the WireGuard peer that carries the peer's address: its own, or the hub's when the
   * path is relayed (then `relayVia` names the hub); absent when the interface could not be read.
   */
  readonly tunnelPeer?: TunnelPeer;
  /** tunnel: the machine relaying to the peer (the hub), when the peer's address rides on its WireGuard peer. */
  readonly relayVia?: string;
  /** tunnel: the relaying machine's WireGuard key, so later reads of the tunnel follow the same peer. */
  readonly relayKey?: string;
  /** capabilities: the models the peer reports. */
  readonly models?: readonly ModelInfo[];
  /** model-runtime: the model the first token is asked of. */
  readonly model?: string;
  /** capabilities: the peer's OS (its hardware.platform), so a fix there names its services in that OS's tools. */
  readonly peerOs?: string;
}

/** What one probe hands back: its outcome, the facts its check's messages may show, and what later layers need. */
export interface Step<K extends DetailKey = DetailKey> {
  outcome: Outcome;
  detail?: Details<K>;
  learned?: Partial<Learned>;
}

/**
 * The detail keys a check declares: annotate a probe's result with `Step<KeysOf<typeof check>>` so a stray key is a
 * type error.
 */
export type KeysOf<C extends Check> = C["detailKeys"][number];

/** The probe of one check; `K` is the detail keys that check declares. */
export interface LayerProbe<K extends DetailKey = DetailKey> {
  readonly code: LayerCode;
  probe(run: Run, learned: Learned): Promise<Step<K>>;
}

/** Binds a probe to its check, so the probe may record only the detail keys the check declares. */
export function probeFor<K extends DetailKey>(
  check: Check<K>,
  probe: (run: Run, learned: Learned) => Promise<Step<NoInfer<K>>>,
): LayerProbe<K> {
  return { code: check.code, probe };
}

/** The context messages and fixes read: the path's names, what the layers learned, every detail recorded so far. */
export function fixContext(run: Run, learned: Learned, detail: Details): FixContext {
  const ctx: FixContext = { ...run.path, detail, fromOs: run.os };
  const peerOs = learned.peerOs ?? (run.self ? run.os : undefined);
  if (peerOs !== undefined) ctx.peerOs = peerOs;
  if (learned.entry !== undefined) ctx.meshIp = learned.entry.meshIp;
  if (learned.model !== undefined) ctx.model = learned.model;
  return ctx;
}

export const ok: Outcome = { kind: "ok" };
export const skipped = (message: string): Outcome => ({ kind: "skipped", message });
export const fail = (failure: Failure, offerFix?: boolean): Outcome =>
  offerFix === undefined ? { kind: "fail", failure } : { kind: "fail", failure, offerFix };
export const timeout = (ms: number) => AbortSignal.timeout(ms);
