import { eq, sql } from "drizzle-orm";
import { markAppendPath } from "../db/append-path.js";
import type { LedgerDb } from "../db/open.js";
import { balances, head, rejections } from "../db/schema.js";
import { entryHash, type LedgerRecord } from "@potluck/ledger-proof";
import { canonicalJson, type IncomingEvent } from "./events.js";
import { judge, type AccountState, type RefState, type Refusal } from "./rules.js";

/** Events per transaction: big enough to amortize the commit, small enough to keep the head lock short. */
export const APPEND_BATCH_MAX = 1000;

export type AppendOutcome =
  | { eventId: string; status: "applied"; seq: number; hash: string }
  | { eventId: string; status: "duplicate"; seq: number }
  | { eventId: string; status: "rejected"; refusal: Refusal }
  /** Not applied and not recorded: its hold may still arrive (IncomingEvent.holdMayFollow); deliver it again later. */
  | { eventId: string; status: "deferred"; refusal: Refusal };

type Tx = Parameters<Parameters<LedgerDb["transaction"]>[0]>[0];

/**
 * Appends a batch of events in one transaction: locks the head row, resolves duplicates by event
 * id (same payload: already applied; different payload: rejected and recorded) BEFORE anything is
 * hashed, applies the meter's rules, chains and inserts the new entries, updates balances and the
 * head, and records refusals. Either all of it commits or none of it does.
 */
/** `onSent`, when given, is called once every statement of the batch has been sent (see below). */
export async function appendEvents(
  db: LedgerDb,
  events: readonly IncomingEvent[],
  nowMs: number = Date.now(),
  onSent?: () => void,
): Promise<AppendOutcome[]> {
  if (events.length === 0) return [];
  if (events.length > APPEND_BATCH_MAX)
    throw new RangeError(`a batch holds at most ${APPEND_BATCH_MAX} events, got ${events.length}`);
  return db.transaction(async (tx) => {
    // The reads go out right behind the head lock, in one round trip: the connection runs its
    // statements in the order they were sent, so the reads start only once the lock is held, and
    // each sees everything committed before it (read committed), so everything any earlier lock
    // holder wrote. The lock must be SENT first: execute() sends now, a bare builder only when
    // awaited.
    const marked = markAppendPath(tx);
    const locked = tx.select().from(head).where(eq(head.id, 1)).for("update").execute();
    const loaded = loadState(tx, events);
    const [, [h], state] = await Promise.all([marked, locked, loaded]);
    if (h === undefined) throw new Error("appending: the head row is missing; was the database migrated?");
    const planned: Planned = { outcomes: [], records: [], refused: [], size: h.size, lastHash: h.lastHash };
    // Planned and inserted in chunks, each chunk's INSERT sent before the next one is planned:
    // the database inserts one chunk while this process hashes the next, instead of each side
    // waiting for the other to finish the whole batch. The chain runs on across the chunks, and
    // the link check of each INSERT sees the chunks before it (same transaction).
    const inserts: Promise<unknown>[] = [];
    for (let from = 0; from < events.length; from += WRITE_CHUNK) {
      const before = planned.records.length;
      plan(events.slice(from, from + WRITE_CHUNK), state, planned, nowMs);
      if (planned.records.length > before) inserts.push(quiet(insertEntries(tx, planned.records.slice(before))));
      // Let the driver put the chunk on the wire (it sends from a microtask) before planning on.
      if (from + WRITE_CHUNK < events.length) await new Promise((resolve) => setImmediate(resolve));
    }
    const written = write(tx, planned, state);
    // Everything is on its way; from here to the commit this process only waits for the database,
    // which is when a caller's own work (the ingest's next fetch) takes nothing from this batch.
    onSent?.();
    await Promise.all([...inserts, written]);
    return planned.outcomes;
  });
}

/** Events planned per INSERT within a batch (see appendEvents). */
const WRITE_CHUNK = 250;

/**
 * The promise, with a handler attached now: a chunk's INSERT may fail while later chunks are
 * still being planned, before anything awaits it, and an unhandled rejection would end the
 * process. The caller still awaits the promise itself and sees the error.
 */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

interface LoadedState {
  existing: Map<string, { seq: number; payloadHash: string }>;
  accounts: Map<string, AccountState>;
  refs: Map<string, RefState>;
  touched: Set<string>;
}

async function loadState(tx: Tx, events: readonly IncomingEvent[]): Promise<LoadedState> {
  const ids = unique(events.map((e) => e.eventId));
  const names = unique(events.flatMap((e) => (e.payee === "" ? [e.account] : [e.account, e.payee])));
  const refIds = unique(events.map((e) => e.ref).filter((r) => r !== ""));
  // Array parameters keep a 1,000-event batch at a handful of bind parameters. Entries are looked
  // up one index probe per key, whatever the table's size: a LATERAL subquery with LIMIT or OFFSET
  // is never flattened into a join. With `= any($1)` the planner read the whole entries table
  // instead (a sequential scan with a hashed filter looks cheaper to it until the table holds some
  // 100,000 entries), several times the probes' cost a batch and growing with every batch
  // (`tools/bench/ledger/profile-ingest.ts --explain 1` shows both plans). The reads are
  // independent, so they go out together: the driver pipelines them on the transaction's
  // connection, one round trip instead of four. Each is sent
  // here, by execute(), in this order, behind the head lock the caller sent before calling this.
  const [known, accts, refRows, closers] = await Promise.all([
    rows<{ event_id: string; seq: number | string; payload_hash: string }>(
      tx
        .execute(
          sql`select e.event_id, e.seq, e.payload_hash from unnest(${textArray(ids)}::text[]) as u(id)
        cross join lateral (select event_id, seq, payload_hash from entries where event_id = u.id limit 1) e`,
        )
        .execute(),
    ),
    // Balances stay `= any($1)`: one row per account, so while the planner prefers the scan it is
    // the cheaper plan for a few thousand accounts; it probes once they are many.
    tx
      .select()
      .from(balances)
      .where(sql`${balances.account} = any(${textArray(names)}::text[])`)
      .execute(),
    refIds.length === 0
      ? []
      : rows<{
          event_id: string;
          kind: string;
          account: string;
          delta: number | string;
          held_delta: number | string;
          meta: string;
        }>(
          tx
            .execute(
              sql`select r.event_id, r.kind, r.account, r.delta, r.held_delta, r.meta from unnest(${textArray(refIds)}::text[]) as u(id)
            cross join lateral (select event_id, kind, account, delta, held_delta, meta from entries where event_id = u.id limit 1) r`,
            )
            .execute(),
        ),
    refIds.length === 0
      ? []
      : rows<{ ref: string; kind: string; delta: number | string }>(
          tx
            .execute(
              sql`select c.ref, c.kind, c.delta from unnest(${textArray(refIds)}::text[]) as u(id)
            cross join lateral (select ref, kind, delta from entries where ref = u.id and ref <> '' and kind in ('settle', 'void', 'refund') offset 0) c`,
            )
            .execute(),
        ),
  ]);
  const refs = new Map<string, RefState>();
  for (const r of refRows)
    refs.set(r.event_id, {
      kind: r.kind,
      account: r.account,
      amount: r.kind === "hold" ? Number(r.held_delta) : -Number(r.delta),
      closed: false,
      refunded: 0,
      payee: payeeOf(r.meta),
    });
  for (const c of closers) {
    const target = refs.get(c.ref);
    if (target === undefined) continue;
    if (c.kind === "refund") target.refunded += Number(c.delta);
    else target.closed = true;
  }
  const accounts = new Map(accts.map((a) => [a.account, { balance: a.balance, held: a.held }]));
  // A settlement or refund pays (or takes back from) the payee its hold or spend names, known
  // only now: one more read, only for batches that hold such events.
  const payees = unique([...refs.values()].map((r) => r.payee).filter((p) => p !== "" && !names.includes(p)));
  if (payees.length > 0)
    for (const a of await tx
      .select()
      .from(balances)
      .where(sql`${balances.account} = any(${textArray(payees)}::text[])`))
      accounts.set(a.account, { balance: a.balance, held: a.held });
  return {
    existing: new Map(known.map((k) => [k.event_id, { seq: Number(k.seq), payloadHash: k.payload_hash }])),
    accounts,
    refs,
    touched: new Set(),
  };
}

/** The payee an entry's meta names: `payee` (spend, hold, settle), or a usage spend's `counterparty`. */
function payeeOf(meta: string): string {
  try {
    const m = JSON.parse(meta) as { payee?: unknown; counterparty?: unknown; kind?: unknown };
    if (typeof m.payee === "string") return m.payee;
    return typeof m.counterparty === "string" ? m.counterparty : "";
  } catch {
    return "";
  }
}

type Chained = LedgerRecord & { hash: string };

interface Planned {
  outcomes: AppendOutcome[];
  records: Chained[];
  refused: { ev: IncomingEvent; refusal: Refusal }[];
  size: number;
  lastHash: string;
}

/** Plans `events` on from where `out` stands (its size and last hash), adding to it. */
function plan(events: readonly IncomingEvent[], state: LoadedState, out: Planned, nowMs: number): void {
  const rules = { account: (n: string) => state.accounts.get(n), ref: (id: string) => state.refs.get(id) };
  for (const ev of events) {
    const seen = state.existing.get(ev.eventId);
    if (seen !== undefined) {
      if (seen.payloadHash === ev.payloadHash)
        out.outcomes.push({ eventId: ev.eventId, status: "duplicate", seq: seen.seq });
      else
        reject(out, ev, {
          code: "event_id_conflict",
          status: 409,
          field: "eventId",
          message: `event ${ev.eventId} was already applied with a different payload (entry ${seen.seq})`,
        });
      continue;
    }
    const effect = judge(ev, rules);
    if (!effect.ok && effect.refusal.code === "unknown_hold" && ev.holdMayFollow === true) {
      out.outcomes.push({ eventId: ev.eventId, status: "deferred", refusal: effect.refusal });
      continue;
    }
    if (!effect.ok) {
      reject(out, ev, effect.refusal);
      continue;
    }
    const meta = ev.kind === "settle" ? settleMeta(state.refs.get(ev.ref)) : ev.meta;
    const record = chain(out, {
      eventId: ev.eventId,
      kind: ev.kind,
      account: ev.account,
      delta: effect.delta,
      heldDelta: effect.heldDelta,
      ref: ev.ref,
      meta,
      payloadHash: ev.payloadHash,
      createdAtMs: nowMs,
    });
    out.outcomes.push({ eventId: ev.eventId, status: "applied", seq: record.seq, hash: record.hash });
    follow(state, ev, record);
    if (effect.pair !== undefined) {
      // The other half of the movement, the next entry of the same transaction. '#' is outside
      // ClientId, so no client event can take its id; it refers to the event that caused it.
      const pair = effect.pair;
      const kind = pair.delta > 0 ? "earn" : "refund";
      const paired = chain(out, {
        eventId: `${ev.eventId}#${kind}`,
        kind,
        account: pair.account,
        delta: pair.delta,
        heldDelta: 0,
        ref: ev.eventId,
        meta: canonicalJson({ from: ev.account }),
        payloadHash: ev.payloadHash,
        createdAtMs: nowMs,
      });
      credit(state, pair.account, paired.delta);
    }
  }
}

/** Appends one record to the chain being planned: its sequence number, link and hash. */
function chain(out: Planned, r: Omit<LedgerRecord, "seq" | "prevHash">): Chained {
  const record: Chained = { ...r, seq: out.size, prevHash: out.lastHash, hash: "" };
  record.hash = entryHash(record);
  out.records.push(record);
  out.size += 1;
  out.lastHash = record.hash;
  return record;
}

/** A settlement's meta names its payee (the hold's), so a later refund knows whom to take back from. */
function settleMeta(hold: RefState | undefined): string {
  return canonicalJson({ payee: hold?.payee ?? "" });
}

/** Carries an applied event's effect into the in-memory state so later events in the batch see it. */
function follow(state: LoadedState, ev: IncomingEvent, r: LedgerRecord): void {
  state.existing.set(ev.eventId, { seq: r.seq, payloadHash: ev.payloadHash });
  const acct = state.accounts.get(ev.account) ?? { balance: 0, held: 0 };
  state.accounts.set(ev.account, { balance: acct.balance + r.delta, held: acct.held + r.heldDelta });
  state.touched.add(ev.account);
  const target = ev.ref === "" ? undefined : state.refs.get(ev.ref);
  // Holds, spends and settlements can be referred to later (settled, voided, refunded).
  if (ev.kind === "hold" || ev.kind === "spend" || ev.kind === "settle")
    state.refs.set(ev.eventId, {
      kind: ev.kind,
      account: ev.account,
      amount: ev.kind === "hold" ? r.heldDelta : -r.delta,
      closed: false,
      refunded: 0,
      payee: ev.kind === "settle" ? (target?.payee ?? "") : ev.payee,
    });
  if (target !== undefined && (ev.kind === "settle" || ev.kind === "void")) target.closed = true;
  if (target !== undefined && ev.kind === "refund") target.refunded += r.delta;
}

/** The paired entry's change to the other party's balance, for later events in the batch. */
function credit(state: LoadedState, account: string, delta: number): void {
  const acct = state.accounts.get(account) ?? { balance: 0, held: 0 };
  state.accounts.set(account, { balance: acct.balance + delta, held: acct.held });
  state.touched.add(account);
}

function reject(out: Planned, ev: IncomingEvent, refusal: Refusal): void {
  out.outcomes.push({ eventId: ev.eventId, status: "rejected", refusal });
  out.refused.push({ ev, refusal });
}

/**
 * Everything but the entries (inserted by then): balances, head and refusals, sent together (pipelined on the
 * connection).
 */
async function write(tx: Tx, p: Planned, state: LoadedState): Promise<void> {
  const pending: PromiseLike<unknown>[] = [];
  if (p.records.length > 0) {
    const names = [...state.touched];
    const rows = names.map((account) => state.accounts.get(account) ?? { balance: 0, held: 0 });
    // One statement with array parameters: a batch costs a handful of parameters, not one per column per row.
    pending.push(
      tx.execute(sql`
      insert into balances (account, balance, held, as_of_seq)
      select account, balance, held, ${p.size - 1}::bigint from unnest(${textArray(names)}::text[], ${intArray(rows.map((r) => r.balance))}::bigint[], ${intArray(rows.map((r) => r.held))}::bigint[]) as u(account, balance, held)
      on conflict (account) do update set balance = excluded.balance, held = excluded.held, as_of_seq = excluded.as_of_seq`),
    );
    pending.push(tx.update(head).set({ size: p.size, lastHash: p.lastHash }).where(eq(head.id, 1)));
  }
  if (p.refused.length > 0) {
    pending.push(
      tx.insert(rejections).values(
        p.refused.map(({ ev, refusal }) => ({
          eventId: ev.eventId,
          code: refusal.code,
          reason: refusal.message,
          payloadHash: ev.payloadHash,
          payload: ev.payload,
        })),
      ),
    );
  }
  await Promise.all(pending);
}

/**
 * Inserts chained entries, one parameter per column: each an array literal written here. The
 * driver's generic array encoding (two regex replaces per element, 12,000 elements a batch) was
 * a tenth of the ingest's CPU; most columns here need no escaping at all.
 */
async function insertEntries(tx: Pick<Tx, "execute">, records: readonly Chained[]): Promise<void> {
  const ints = (f: (r: Chained) => number) => intArray(records.map(f));
  const texts = (f: (r: Chained) => string) => textArray(records.map(f));
  const hexes = (f: (r: Chained) => string) => hexArray(records.map(f));
  await tx.execute(sql`
    insert into entries (seq, event_id, kind, account, delta, held_delta, ref, meta, payload_hash, created_at_ms, prev_hash, hash)
    select * from unnest(${ints((r) => r.seq)}::bigint[], ${texts((r) => r.eventId)}::text[], ${texts((r) => r.kind)}::text[], ${texts((r) => r.account)}::text[],
      ${ints((r) => r.delta)}::bigint[], ${ints((r) => r.heldDelta)}::bigint[], ${texts((r) => r.ref)}::text[], ${texts((r) => r.meta)}::text[],
      ${hexes((r) => r.payloadHash)}::text[], ${ints((r) => r.createdAtMs)}::bigint[], ${hexes((r) => r.prevHash)}::text[], ${hexes((r) => r.hash)}::text[])
    order by 1`);
}

/** A PostgreSQL array literal of safe integers (the records' own numbers). */
function intArray(values: readonly number[]): string {
  for (const v of values) if (!Number.isSafeInteger(v)) throw new RangeError(`appending: ${v} is not a safe integer`);
  return `{${values.join(",")}}`;
}

/**
 * A PostgreSQL array literal of strings: each quoted, with backslash and double quote escaped
 * (inside quotes, the only two characters that need it). JSON.stringify of the whole array writes
 * exactly that when no string holds a control character (or a lone surrogate), which JSON would
 * write as an escape PostgreSQL reads differently; the canonical JSON in meta never does. It is
 * several times cheaper than escaping string by string, and meta is most of a batch's bytes.
 */
export function textArray(values: readonly string[]): string {
  const json = JSON.stringify(values);
  // Any escape but \" and \\ means a control character or lone surrogate (or, harmlessly, an escaped
  // backslash before one of these letters): then escape string by string.
  if (!JSON_OTHER_ESCAPE.test(json)) return `{${json.slice(1, -1)}}`;
  let out = "{";
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i] as string;
    out += `${i === 0 ? '"' : ',"'}${NEEDS_ESCAPE.test(v) ? v.replace(ESCAPED, "\\$&") : v}"`;
  }
  return `${out}}`;
}

const JSON_OTHER_ESCAPE = /\\[bfnrtu]/;

/** Hashes are checked lower-case hex when they are encoded for hashing; nothing to quote or escape. */
function hexArray(values: readonly string[]): string {
  return `{${values.join(",")}}`;
}

const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/**
 * The rows of a raw query: postgres.js resolves to an array of rows, PGlite to { rows }. Bigint columns come back as
 * strings from postgres.js.
 */
async function rows<T>(result: PromiseLike<unknown>): Promise<T[]> {
  const r = await result;
  return (Array.isArray(r) ? r : (r as { rows: T[] }).rows) as T[];
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
