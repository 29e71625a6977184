import { classifyNetworkError as classifyPeerNetworkError } from "@potluck/peer";
import type { Capabilities, FwStatus, Health, ModelInfo, RosterEntry } from "@potluck/protocol";

/**
 * The small interfaces diagnostics probes through. Each has a real implementation (HTTP, `wg`)
 * and tests inject fakes, so the whole model runs without a network or a clock.
 */

/** Where a peer's sidecar is reached: its mesh IP, or loopback for this machine itself. */
export interface PeerTarget {
  name: string;
  host: string;
  port: number;
}

/** How a probe failed, in the terms classification needs. */
export const ProbeErrorKind = {
  /** The host answered with a reset: it is up and routable, but nothing listens on the port. */
  refused: "refused",
  /** No answer at all within the budget: dropped somewhere (firewall, black hole, powered off). */
  timeout: "timeout",
  /** An ICMP unreachable or no route: the network said no. */
  unreachable: "unreachable",
  /** The connection was cut after it opened. */
  reset: "reset",
  /** The peer answered with an HTTP error status. */
  http: "http",
  /** The peer answered 2xx with a body that is not what the protocol says. */
  invalid: "invalid",
} as const;
export type ProbeErrorKind = (typeof ProbeErrorKind)[keyof typeof ProbeErrorKind];

export class ProbeError extends Error {
  override name = "ProbeError";
  constructor(
    readonly kind: ProbeErrorKind,
    message: string,
    readonly http?: { status: number; code?: string; message?: string },
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** This machine's own sidecar. In the sidecar it is answered in-process. */
export interface LocalProbe {
  health(signal: AbortSignal): Promise<Health>;
}

export interface CoordinatorProbe {
  readonly url: string;
  /** Resolves when the coordinator answers its health check. */
  health(signal: AbortSignal): Promise<void>;
}

/** What the roster says about a machine: absent, or its entry. */
export interface RosterSource {
  lookup(name: string, signal: AbortSignal): Promise<RosterEntry | null>;
  /** Every machine in the roster, for the overview. */
  list(signal: AbortSignal): Promise<RosterEntry[]>;
}

/** One peer of the mesh interface, as `wg show IFACE dump` lists it. */
export interface TunnelPeer {
  publicKey: string;
  /** host:port, or null when WireGuard has none. */
  endpoint: string | null;
  allowedIps: string[];
  /** Milliseconds since the Unix epoch; null when there has never been a handshake. */
  latestHandshakeAtMs: number | null;
  rxBytes: number;
  txBytes: number;
}

export interface TunnelReader {
  /** Throws when the interface does not exist or `wg` cannot read it. */
  peers(interfaceName: string, signal: AbortSignal): Promise<TunnelPeer[]>;
}

export interface FirstToken {
  text: string;
  servedBy: string;
}

/** HTTP to a peer sidecar (signed when the peer requires it). Throws `ProbeError`. */
export interface PeerClient {
  /** Sends anything to the peer so an idle tunnel starts a handshake; never throws. */
  nudge(target: PeerTarget, signal: AbortSignal): Promise<void>;
  /** POST /peer/probe with `bytes` of payload; resolves when the echo matches. */
  probe(target: PeerTarget, bytes: number, signal: AbortSignal): Promise<void>;
  capabilities(target: PeerTarget, signal: AbortSignal): Promise<Capabilities>;
  /** POST /peer/infer for one token; resolves at the first token. */
  firstToken(target: PeerTarget, model: string, signal: AbortSignal): Promise<FirstToken>;
}

/**
 * This machine's own model path, for the local report: the API a local app uses (loopback, no
 * peer signature), so a machine alone, in no roster, still gets an honest answer.
 */
export interface SelfClient {
  models(signal: AbortSignal): Promise<ModelInfo[]>;
  /** A one-token completion on this machine; resolves at the answer. */
  firstToken(model: string, signal: AbortSignal): Promise<FirstToken>;
}

/** The local fw-watcher (loopback). */
export interface FirewallProbe {
  /** Null when no fw-watcher runs here (not Linux, not installed): nothing to consult. */
  status(signal: AbortSignal): Promise<FwStatus | null>;
  /** Asks the watcher to reinsert missing rules. Only ever called after a person consented. */
  reapply(signal: AbortSignal): Promise<FwStatus>;
}

/**
 * The peer's address on the network under the mesh (its WireGuard endpoint). A host that answers
 * there is powered on and on the network, which tells a firewall drop from a dead peer without
 * waiting for WireGuard's 10 s keepalive.
 */
export interface UnderlayProbe {
  /**
   * True when the host at `ip` answered a TCP connection on `port` at all (accepted or refused).
   * False when nothing came back, or when `ip` is not on a directly attached network: off-link, a
   * router or NAT box could answer in the peer's place and prove nothing.
   */
  hostAnswers(ip: string, port: number, signal: AbortSignal): Promise<boolean>;
}

/** What a peer's fw-watcher last published (on NATS, `<root>.fw.status.<machine>`). */
export interface PeerFirewallStatus {
  status: FwStatus;
  /** When this machine received it (ms since the epoch, this machine's clock). */
  receivedAtMs: number;
}

/** The peers' fw-watcher statuses as they arrive; nothing heard is null, never an error. */
export interface PeerFirewallSource {
  latest(machine: string): PeerFirewallStatus | null;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** What fetch / node:http / node:net throw, as a probe error of the kind libs/peer's one classification names. */
export function classifyNetworkError(error: unknown): ProbeError {
  if (error instanceof ProbeError) return error;
  const failure = classifyPeerNetworkError(error);
  return new ProbeError(failure.kind, failure.message, undefined, { cause: error });
}
