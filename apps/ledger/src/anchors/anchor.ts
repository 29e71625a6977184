import type { StoredCheckpoint } from "../ledger/log.js";

/**
 * Somewhere a checkpoint is published so the operator cannot quietly walk it back. `publish`
 * returns a receipt that goes into members' proof bundles; `verify` checks a receipt against the
 * anchor; `upgrade` (optional) turns a provisional receipt into a final one (e.g. once a chain
 * transaction is final).
 *
 * Solana memo adapter (described, not built — no network here): publish sends one transaction
 * with the SPL Memo program whose memo is `potluck-checkpoint <origin> <size> <root-base64>`,
 * signed by the operator's fee payer; the receipt is `{ signature, slot }`. `verify` fetches the
 * transaction by signature from any RPC node and compares the memo text with the checkpoint;
 * `upgrade` re-reads it until its commitment is `finalized` and records the block time. A chain
 * outage only leaves the row pending in the outbox.
 */
export interface Anchor {
  readonly kind: string;
  publish(cp: StoredCheckpoint): Promise<string>;
  verify(cp: StoredCheckpoint, receipt: string): Promise<void>;
  upgrade?(cp: StoredCheckpoint, receipt: string): Promise<string | undefined>;
}

export class AnchorError extends Error {
  override name = "AnchorError";
}
