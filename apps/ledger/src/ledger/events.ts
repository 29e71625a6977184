import { hash } from "node:crypto";
import { UsageEvent, type LedgerEventRequest } from "@potluck/protocol";
import { type RecordKind } from "@potluck/ledger-proof";

/** An event on its way into the chain, from HTTP or JetStream, already validated by protocol schemas. */
export interface IncomingEvent {
  eventId: string;
  kind: Exclude<RecordKind, "snapshot">;
  account: string;
  /** Micro-credits: the amount for earn/spend/hold/settle/refund, the signed delta for adjust, 0 for void. */
  amount: number;
  /** The hold (settle, void) or spend (refund) this event refers to, or "". */
  ref: string;
  /** Who a spend or hold pays (the server's owner), or "": a settlement's payee is its hold's. */
  payee: string;
  /**
   * The owner of the machine that wrote the event over HTTP; undefined for the operator (write
   * token) and for JetStream. A settlement's writer must be its hold's payee (see rules.ts).
   */
  actor?: string;
  /**
   * Set by the JetStream ingest while the message can still be redelivered: a settle or void
   * whose hold is not in the chain yet is then deferred, not refused, because a hold can land
   * after its settlement (two ledgers on one consumer, or a batch redelivered after a crash while
   * later ones were applied). Absent: refused at once, as over HTTP.
   */
  holdMayFollow?: boolean;
  meta: string;
  /** Canonical JSON of the whole payload, and its SHA-256: same id + same hash = already applied. */
  payload: string;
  payloadHash: string;
}

export function fromRequest(req: LedgerEventRequest): IncomingEvent {
  const base = { eventId: req.eventId, kind: req.kind, account: req.account, payee: "", ...payloadOf(req) };
  switch (req.kind) {
    case "earn":
      return {
        ...base,
        amount: req.amount,
        ref: "",
        meta: canonicalJson(req.jobId === undefined ? {} : { jobId: req.jobId }),
      };
    case "spend":
      return {
        ...base,
        amount: req.amount,
        ref: "",
        payee: req.payee,
        meta: canonicalJson(req.jobId === undefined ? { payee: req.payee } : { jobId: req.jobId, payee: req.payee }),
      };
    case "hold":
      return {
        ...base,
        amount: req.amount,
        ref: "",
        payee: req.payee,
        meta: canonicalJson({ jobId: req.jobId, payee: req.payee }),
      };
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

/**
 * A sidecar's usage event (JetStream), with the job's facts as meta. A spend or hold pays its
 * counterparty (the server's owner); a settle, void or refund refers to `ref` (void moves
 * nothing, whatever amount it carries); an earn stays an earn, which the rules refuse as
 * unpaired. Ingest sets `actor` to the owner of the machine that signed it (verify-usage.ts), so
 * the rules check who settles or voids exactly as for a signed HTTP write.
 */
export function fromUsage(ev: UsageEvent): IncomingEvent {
  const { eventId, kind } = ev;
  const account = ev.account;
  const amount = kind === "void" ? 0 : ev.amount;
  const payee = kind === "spend" || kind === "hold" ? ev.counterparty : "";
  const ref = kind === "settle" || kind === "void" || kind === "refund" ? (ev.ref ?? "") : "";
  // Payload and meta (the payload without the fields the entry stores as columns) in one pass:
  // every ingested event comes through here, and each value is serialized once, not twice.
  const { whole: payload, rest: meta } = hasUsageKeysOnly(ev) ? usageSplit(ev) : canonicalSplit(ev, USAGE_COLUMNS);
  return { eventId, kind, account, amount, ref, payee, meta, payload, payloadHash: hash("sha256", payload, "hex") };
}

const USAGE_COLUMNS: ReadonlySet<string> = new Set(["eventId", "kind", "account", "amount", "ref"]);

/**
 * True when `ev` has only the schema's keys (what checking it yields: an optional one may be
 * absent), so their order is known in advance.
 */
function hasUsageKeysOnly(ev: object): boolean {
  let present = 0;
  for (const m of USAGE_MEMBERS) if (Object.hasOwn(ev, m.key)) present += 1;
  return present === Object.keys(ev).length;
}

/**
 * canonicalSplit(ev, USAGE_COLUMNS) for an event with exactly the schema's keys: the same text without sorting keys per
 * event.
 */
function usageSplit(ev: UsageEvent): { whole: string; rest: string } {
  let whole = "{";
  let rest = "{";
  for (const m of USAGE_MEMBERS) {
    const v = canonical((ev as unknown as Record<string, unknown>)[m.key], 1);
    if (v === undefined) continue;
    const member = m.prefix + v;
    whole += whole.length === 1 ? member : `,${member}`;
    if (m.inMeta) rest += rest.length === 1 ? member : `,${member}`;
  }
  return { whole: `${whole}}`, rest: `${rest}}` };
}

/**
 * canonicalJson(obj) and canonicalJson(obj without the `omit` keys), written together. Dropping
 * keys keeps the others' relative order, so `rest` is exactly what canonicalJson gives for the
 * smaller object.
 */
export function canonicalSplit(obj: object, omit: ReadonlySet<string>): { whole: string; rest: string } {
  let whole = "{";
  let rest = "{";
  for (const k of sortedKeys(obj)) {
    const v = canonical((obj as Record<string, unknown>)[k], 1);
    if (v === undefined) continue;
    const member = `${SAFE_KEY.test(k) ? `"${k}"` : JSON.stringify(k)}:${v}`;
    whole += `${whole.length === 1 ? "" : ","}${member}`;
    if (!omit.has(k)) rest += `${rest.length === 1 ? "" : ","}${member}`;
  }
  return { whole: `${whole}}`, rest: `${rest}}` };
}

/** JSON with object keys sorted at every depth, so equal payloads hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  return canonical(value, 0) ?? "null";
}

function payloadOf(value: unknown): { payload: string; payloadHash: string } {
  const payload = canonicalJson(value);
  return { payload, payloadHash: hash("sha256", payload, "hex") };
}

/** Nesting beyond this is refused rather than recursed into (payloads are validated, small objects). */
const DEPTH_MAX = 64;

/**
 * Every ingested event is serialized here twice (payload and meta), so the text is written
 * directly instead of building a key-sorted copy for JSON.stringify (that copy, a defineProperty
 * per key, was the largest single cost of parsing an event). Same output as JSON.stringify over a
 * key-sorted copy: keys in UTF-16 code-unit order, undefined and function members left out of
 * objects and written as null in arrays, scalars exactly as JSON.stringify writes them.
 * Undefined means "leave this member out".
 */
function canonical(value: unknown, depth: number): string | undefined {
  if (value === null || typeof value !== "object")
    return typeof value === "function" || typeof value === "symbol"
      ? undefined
      : (JSON.stringify(value) as string | undefined);
  if (depth > DEPTH_MAX) throw new RangeError(`canonical JSON: nested deeper than ${DEPTH_MAX}`);
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i += 1) out += (i === 0 ? "" : ",") + (canonical(value[i], depth + 1) ?? "null");
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = sortedKeys(obj);
  let out = "{";
  for (const k of keys) {
    const v = canonical(obj[k], depth + 1);
    if (v === undefined) continue;
    out += `${out.length === 1 ? "" : ","}${SAFE_KEY.test(k) ? `"${k}"` : JSON.stringify(k)}:${v}`;
  }
  return `${out}}`;
}

/**
 * The order the sorted copy enumerates in: a JS object always lists its array-index keys ("0",
 * "17" …) first, ascending by number, and only then its other keys in the order they were
 * defined (here: sorted). Existing entries were hashed over that order, so it is kept exactly.
 */
function sortedKeys(obj: object): string[] {
  const own = Object.keys(obj);
  // Index keys, when present, are listed first by Object.keys itself: one look says whether there are any.
  if (own.length === 0 || !isIndexKey(own[0] as string)) return own.sort();
  const index = own.filter(isIndexKey);
  return [...index, ...own.slice(index.length).sort()];
}

function isIndexKey(k: string): boolean {
  return INDEX_KEY.test(k) && Number(k) < 2 ** 32 - 1;
}

const INDEX_KEY = /^(?:0|[1-9][0-9]{0,9})$/;

/** Keys that JSON.stringify writes verbatim between quotes (no escaping needed). */
const SAFE_KEY = /^[A-Za-z0-9_$-]*$/;

/**
 * A usage event's keys in canonical order (defined last: sortedKeys needs the constants above), each with its `"key":`
 * text and whether meta keeps it.
 */
const USAGE_MEMBERS = sortedKeys(UsageEvent.shape).map((k) => ({
  key: k,
  prefix: `${JSON.stringify(k)}:`,
  inMeta: !USAGE_COLUMNS.has(k),
}));
