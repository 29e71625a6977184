import { HeartbeatTiming, type MachineState } from "@potluck/protocol";
import type { Clock } from "./clock.js";

/** What the coordinator last heard from one machine, stamped with its own receive time. */
export interface HeardFrom {
  receivedAtMs: number;
  wireguardPublicKey: string;
  seq: number;
}

/**
 * Judges liveness from heartbeat receive times on the coordinator's clock (a machine's own
 * `sentAt` is never trusted). Kept in memory because heartbeats arrive at 1 Hz per machine in
 * the worst case; the state object flushes receive times to the database in batches.
 */
export class HeartbeatTracker {
  private readonly heard = new Map<string, HeardFrom>();
  private readonly dirty = new Set<string>();
  private readonly judged = new Map<string, MachineState>();
  /** The coordinator's own latest outage; start-up counts as one that ends now. */
  private outage: { fromMs: number; toMs: number };
  private disconnectedAtMs: number | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly timing: { offlineAfterMs: number } = HeartbeatTiming,
  ) {
    const now = clock.nowMs();
    this.outage = { fromMs: now, toMs: now };
  }

  /** Records a heartbeat; returns what it was heard with before (undefined the first time). */
  record(machine: string, wireguardPublicKey: string, seq: number): HeardFrom | undefined {
    const before = this.heard.get(machine);
    this.heard.set(machine, { receivedAtMs: this.clock.nowMs(), wireguardPublicKey, seq });
    this.dirty.add(machine);
    return before;
  }

  /** Seeds what an earlier coordinator process persisted, without making it look fresh. */
  seed(machine: string, receivedAtMs: number, wireguardPublicKey: string): void {
    const current = this.heard.get(machine);
    if (current === undefined || current.receivedAtMs < receivedAtMs)
      this.heard.set(machine, { receivedAtMs, wireguardPublicKey, seq: 0 });
  }

  lastHeard(machine: string): HeardFrom | undefined {
    return this.heard.get(machine);
  }

  /** True while the coordinator's own NATS connection is down. */
  get coordinatorDisconnected(): boolean {
    return this.disconnectedAtMs !== null;
  }

  /** Reconnects seen since start; tests wait on it. */
  reconnects = 0;

  /** The coordinator lost its NATS connection: silence from now on is not the machines' fault. */
  noteDisconnect(): void {
    this.disconnectedAtMs ??= this.clock.nowMs();
  }

  noteReconnect(): void {
    const now = this.clock.nowMs();
    this.outage = { fromMs: this.disconnectedAtMs ?? now, toMs: now };
    this.disconnectedAtMs = null;
    this.reconnects++;
  }

  stateOf(machine: string): MachineState {
    const heard = this.heard.get(machine);
    if (heard === undefined) return "never_seen";
    const now = this.clock.nowMs();
    if (now - heard.receivedAtMs <= this.timing.offlineAfterMs) return "online";
    // Silence longer than the timeout may be our own outage: a machine that was fine when we
    // lost NATS gets the full timeout again, counted from our reconnect.
    const { fromMs, toMs } = this.outage;
    const fineWhenWeLeft = heard.receivedAtMs + this.timing.offlineAfterMs >= fromMs;
    if (this.disconnectedAtMs === null && fineWhenWeLeft && now - toMs <= this.timing.offlineAfterMs) return "online";
    if (this.disconnectedAtMs !== null && heard.receivedAtMs + this.timing.offlineAfterMs >= this.disconnectedAtMs)
      return "online";
    return "offline";
  }

  /** Machines whose judged state changed since the last sweep, with the new state. */
  sweep(machines: readonly string[]): Array<{ machine: string; state: MachineState }> {
    const changed: Array<{ machine: string; state: MachineState }> = [];
    for (const machine of machines) {
      const state = this.stateOf(machine);
      // A machine not judged before starts as never seen, so its first heartbeat is a change.
      const before = this.judged.get(machine) ?? "never_seen";
      this.judged.set(machine, state);
      if (before !== state) changed.push({ machine, state });
    }
    return changed;
  }

  /** Receive times not yet flushed to the database, at most `max` of them, removed from the set. */
  takeDirty(max: number): Array<{ machine: string } & HeardFrom> {
    const out: Array<{ machine: string } & HeardFrom> = [];
    for (const machine of this.dirty) {
      if (out.length >= max) break;
      const heard = this.heard.get(machine);
      this.dirty.delete(machine);
      if (heard !== undefined) out.push({ machine, ...heard });
    }
    return out;
  }

  /** Puts back entries whose flush failed, so the next flush retries them. */
  markDirty(machines: readonly string[]): void {
    for (const machine of machines) if (this.heard.has(machine)) this.dirty.add(machine);
  }

  forget(machine: string): void {
    this.heard.delete(machine);
    this.dirty.delete(machine);
    this.judged.delete(machine);
  }
}
