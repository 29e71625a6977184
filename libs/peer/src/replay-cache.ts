import { SigningLimits } from "./limits.js";

/** One signer's remembered nonces (insertion order) and the floor its own evictions raised. */
interface SignerNonces {
  nonces: Map<string, number>;
  floorMs: number;
}

/**
 * Remembers the nonces each signer used within the clock window, so a signed request is accepted
 * once. State is kept per signer, and no signer's requests can change what another signer may do:
 *
 * - A timestamp more than the window from the receiver's clock is never fresh, ahead or behind.
 * - A signer holds at most `signerEntriesMax` nonces. Past that its own oldest is forgotten and
 *   its own floor rises to that timestamp, so a forgotten nonce of its own is refused as stale.
 * - All signers together hold at most `entriesMax`. When that is full the signer holding the most
 *   pays, by the same rule; one signer alone can never reach it (`signerEntriesMax` is smaller),
 *   so a flooding signer evicts only itself.
 * - An entry older than the window is dropped: the clock check refuses its replay anyway.
 */
export class ReplayCache {
  private readonly signers = new Map<string, SignerNonces>();
  private entries = 0;
  private readonly signerEntriesMax: number;

  constructor(
    private readonly entriesMax: number = SigningLimits.nonceCacheEntriesMax,
    private readonly windowMs: number = SigningLimits.clockSkewMsMax,
    signerEntriesMax: number = SigningLimits.nonceSignerEntriesMax,
  ) {
    if (!(entriesMax >= 1 && signerEntriesMax >= 1))
      throw new Error("ReplayCache: entriesMax and signerEntriesMax must be at least 1");
    this.signerEntriesMax = Math.min(signerEntriesMax, entriesMax);
  }

  /** Nonces remembered over all signers. */
  get size(): number {
    return this.entries;
  }

  /** Whether a request `signer` stamped `sentMs` may still be new: inside the window and above its own floor. */
  isFresh(signer: string, sentMs: number, nowMs: number): boolean {
    if (!Number.isFinite(sentMs) || Math.abs(nowMs - sentMs) > this.windowMs) return false;
    return sentMs > (this.signers.get(signer)?.floorMs ?? 0);
  }

  /** False when `signer` already used `nonce` (a replay); true after recording it. Call after the signature holds. */
  remember(signer: string, nonce: string, sentMs: number, nowMs: number): boolean {
    let own = this.signers.get(signer);
    if (own !== undefined) this.expire(signer, own, nowMs);
    if (own?.nonces.has(nonce) === true) return false;
    if (own === undefined || !this.signers.has(signer)) {
      own = { nonces: new Map(), floorMs: 0 };
      this.signers.set(signer, own);
    }
    while (own.nonces.size >= this.signerEntriesMax) this.dropOldest(own);
    if (this.entries >= this.entriesMax) this.sweep(nowMs);
    while (this.entries >= this.entriesMax) this.dropFromLargest();
    own.nonces.set(nonce, sentMs);
    this.entries++;
    return true;
  }

  /**
   * Drops a signer's entries that left the window; a signer with none left is forgotten (its floor is below the window
   * too).
   */
  private expire(signer: string, own: SignerNonces, nowMs: number): void {
    // A signer's own insertion order approximates its time order; stop at its first live entry.
    for (const [nonce, sentMs] of own.nonces) {
      if (sentMs >= nowMs - this.windowMs) break;
      own.nonces.delete(nonce);
      this.entries--;
    }
    if (own.nonces.size === 0 && own.floorMs < nowMs - this.windowMs) this.signers.delete(signer);
  }

  private sweep(nowMs: number): void {
    for (const [signer, own] of this.signers) this.expire(signer, own, nowMs);
  }

  private dropFromLargest(): void {
    let largest: SignerNonces | undefined;
    for (const own of this.signers.values())
      if (largest === undefined || own.nonces.size > largest.nonces.size) largest = own;
    if (largest === undefined || largest.nonces.size === 0)
      throw new Error("ReplayCache: counted entries but holds none");
    this.dropOldest(largest);
  }

  private dropOldest(own: SignerNonces): void {
    const first = own.nonces.entries().next();
    if (first.done === true) return;
    const [nonce, sentMs] = first.value;
    own.nonces.delete(nonce);
    this.entries--;
    // Only this signer's floor moves; it is dropped with the signer once it falls out of the window.
    own.floorMs = Math.max(own.floorMs, sentMs);
  }
}
