import { hash } from "node:crypto";
import type { LedgerEventRequest, UsageEvent } from "@potluck/protocol";
import type { RecordKind } from "../proof/entry.js";

/** An event on its way into the chain, from HTTP or JetStream, already validated by protocol schemas. */
export interface IncomingEvent {
  eventId: string;
  kind: Exclude<RecordKind, "snapshot">;
  account: string;
  /** Micro-credits: the amount for earn/spend/hold/settle/refund, the signed delta for adjust, 0 for void. */
  amount: number;
  /** The hold (settle, void) or spend (refund) this event refers to, or "". */
  ref: string;
  meta: string;
  /** Canonical JSON of the whole payload, and its SHA-256: same id + same hash = already applied. */
  payload: string;
  payloadHash: string;
}

export function fromRequest(req: LedgerEventRequest): IncomingEvent {
  const base = { eventId: req.eventId, kind: req.kind, account: req.account, ...payloadOf(req) };
  switch (req.kind) {
    case "earn":
    case "spend":
      return { ...base, amount: req.amount, ref: "", meta: canonicalJson(req.jobId === undefined ? {} : { jobId: req.jobId }) };
    case "hold":
      return { ...base, amount: req.amount, ref: "", meta: canonicalJson({ jobId: req.jobId }) };
    case "settle":
      return { ...base, amount: req.amount, ref: req.holdEventId, meta: "{}" };
    case "void":
      return { ...base, amount: 0, ref: req.holdEventId, meta: "{}" };
    case "adjust":
      return { ...base, amount: req.delta, ref: "", meta: canonicalJson({ reason: req.reason }) };
    case "refund":
      return { ...base, amount: req.amount, ref: req.refundsEventId, meta: canonicalJson({ reason: req.reason }) };
  }
}

/** A sidecar's usage event (JetStream) becomes an earn or a spend with the job's facts as meta. */
export function fromUsage(ev: UsageEvent): IncomingEvent {
  const { eventId, kind, account, amount, ...facts } = ev;
  return { eventId, kind, account, amount, ref: "", meta: canonicalJson(facts), ...payloadOf(ev) };
}

/** JSON with object keys sorted at every depth, so equal payloads hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function payloadOf(value: unknown): { payload: string; payloadHash: string } {
  const payload = canonicalJson(value);
  return { payload, payloadHash: hash("sha256", payload, "hex") };
}

// Every ingested event goes through here, so no intermediate entry arrays: sort the keys (default
// sort is UTF-16 code-unit order, as before) and define each property in that order.
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj).sort()) {
      const v = obj[k];
      // defineProperty, not assignment: a "__proto__" key stays a plain own property.
      if (v !== undefined) Object.defineProperty(out, k, { value: sortKeys(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
