import type { Clock, PeerClient, PeerTarget } from "./probes.js";

/**
 * The last direct round trip to each peer, so a path relayed via the hub can say what the hub
 * adds. The data-plane layer's small probe is the measure: the same request the relayed path is
 * timed with (tunnel.ts), over the direct path, on a run whose path layer said direct.
 * Bounded: the oldest peer is forgotten past `entriesMax`.
 */
export class DirectRtt {
  /** The latest successful small probe per target host, until the run that made it takes it. */
  readonly #lastSmall = new Map<string, number>();
  readonly #direct = new Map<string, { ms: number; at: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly smallProbeBytes: number,
    private readonly entriesMax: number,
  ) {}

  /** `peer` with its small probes timed; every other call passes straight through. */
  timed(peer: PeerClient): PeerClient {
    return {
      nudge: (target, signal) => peer.nudge(target, signal),
      capabilities: (target, signal) => peer.capabilities(target, signal),
      firstToken: (target, model, signal) => peer.firstToken(target, model, signal),
      probe: async (target: PeerTarget, bytes: number, signal: AbortSignal) => {
        const started = this.clock.now();
        await peer.probe(target, bytes, signal);
        if (bytes !== this.smallProbeBytes) return;
        this.#lastSmall.delete(target.host);
        this.#lastSmall.set(target.host, this.clock.now() - started);
        this.#bound(this.#lastSmall);
      },
    };
  }

  /** At the end of a run: keeps its small probe's time as `peer`'s direct round trip when `direct`. */
  settle(peer: string, host: string, direct: boolean): void {
    const ms = this.#lastSmall.get(host);
    this.#lastSmall.delete(host);
    if (!direct || ms === undefined) return;
    this.#direct.delete(peer);
    this.#direct.set(peer, { ms, at: this.clock.now() });
    this.#bound(this.#direct);
  }

  get(peer: string): { ms: number; ageMs: number } | undefined {
    const last = this.#direct.get(peer);
    return last === undefined ? undefined : { ms: last.ms, ageMs: this.clock.now() - last.at };
  }

  #bound(map: Map<string, unknown>): void {
    while (map.size > this.entriesMax) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) return;
      map.delete(oldest);
    }
  }
}
