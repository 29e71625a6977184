import { SigningLimits } from "./limits.js";

/**
 * Remembers nonces seen within the clock window. Bounded: entries older than the window are
 * dropped; when full, the oldest entry is dropped and `floorMs` rises to its timestamp, so a
 * request no newer than anything forgotten is refused as stale. That keeps replay protection exact
 * at a fixed memory cost.
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  floorMs = 0;

  constructor(
    private readonly entriesMax: number = SigningLimits.nonceCacheEntriesMax,
    private readonly windowMs: number = SigningLimits.clockSkewMsMax,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /** False when `key` was already seen (a replay); true after recording it. */
  remember(key: string, sentMs: number, nowMs: number): boolean {
    this.expire(nowMs);
    if (this.seen.has(key)) return false;
    while (this.seen.size >= this.entriesMax) this.dropOldest();
    this.seen.set(key, sentMs);
    return true;
  }

  private expire(nowMs: number): void {
    // Insertion order approximates time order; stop at the first entry still inside the window.
    for (const [key, sentMs] of this.seen) {
      if (sentMs >= nowMs - 2 * this.windowMs) break;
      this.seen.delete(key);
    }
  }

  private dropOldest(): void {
    const first = this.seen.entries().next();
    if (first.done === true) return;
    const [key, sentMs] = first.value;
    this.seen.delete(key);
    this.floorMs = Math.max(this.floorMs, sentMs);
  }
}
