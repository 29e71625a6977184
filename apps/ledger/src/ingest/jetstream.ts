import { AckPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { signedMessageHeaders } from "@potluck/peer";
import { checkUsageEvent, subjectsFor, type UsageEvent } from "@potluck/protocol";
import { ensureUsageStream, isTransientDbError } from "@potluck/service";
import type { AppendOutcome } from "../ledger/append.js";
import { fromUsage, type IncomingEvent } from "../ledger/events.js";
import type { Ledger } from "../ledger/service.js";
import type { UsageVerifier } from "./verify-usage.js";

/** Limits of the consume loop: batch size, how long a fetch waits, how long the server waits for an ack. */
export const IngestLimits = {
  fetchExpiresMs: 1_000,
  ackWaitMs: 30_000,
  maxAckPending: 20_000,
  idleBackoffMsMax: 5_000,
  appendStallMs: 60_000,
  /**
   * Deliveries of one message before JetStream stops redelivering it. An event that fails on its
   * own is parked on its first failed batch (see applyBatch), so this bound is only met when the
   * database stays down (or parking itself fails) through that many ack waits: at the default
   * ack wait, about 50 minutes. The message then stays in the stream for an operator, and no
   * batch is redelivered forever.
   */
  deliverMax: 100,
  /**
   * A settlement or void whose hold is not in the chain yet is delivered again after holdWaitMs,
   * up to holdWaitDeliveries deliveries, before it is refused (unknown_hold): the hold can land
   * after it when two ledgers share the consumer, or when a batch is redelivered (a ledger killed
   * with it in hand, a failed append) after later batches were applied. Together four default ack
   * waits, so such a hold arrives first; well under deliverMax.
   */
  holdWaitMs: 5_000,
  holdWaitDeliveries: 24,
} as const;

/**
 * Creates the usage stream (its one definition is in @potluck/service) and the ledger's durable
 * pull consumer on it, if they do not exist yet.
 */
export async function ensureUsageConsumer(
  nc: NatsConnection,
  prefix: string,
  durable: string,
  ackWaitMs: number = IngestLimits.ackWaitMs,
): Promise<{ stream: string }> {
  const { stream } = await ensureUsageStream(nc, prefix);
  const jsm = await jetstreamManager(nc);
  try {
    const info = await jsm.consumers.info(stream, durable);
    // A consumer made before redelivery was bounded gets the bound now (max_deliver is editable).
    if (info.config.max_deliver !== IngestLimits.deliverMax)
      await jsm.consumers.update(stream, durable, { max_deliver: IngestLimits.deliverMax });
  } catch {
    await jsm.consumers
      .add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ackWaitMs * 1_000_000,
        max_ack_pending: IngestLimits.maxAckPending,
        max_deliver: IngestLimits.deliverMax,
      })
      .catch(async (error: unknown) => {
        await jsm.consumers.info(stream, durable).catch(() => {
          throw error;
        });
      });
  }
  return { stream };
}

/**
 * Publishes a usage event with its event id as the JetStream message id (the server dedupes on
 * it), signed by `sign` (a machine's identity, as sidecars sign theirs) when given.
 */
export async function publishUsage(
  js: JetStreamClient,
  prefix: string,
  ev: UsageEvent,
  sign?: (parts: { method: string; path: string; body: string; target: string }) => Record<string, string>,
): Promise<void> {
  const subject = subjectsFor(prefix).usage(ev.account);
  const payload = JSON.stringify(ev);
  await js.publish(subject, payload, {
    msgID: ev.eventId,
    ...(sign === undefined ? {} : { headers: signedMessageHeaders(subject, payload, sign) }),
  });
}

/**
 * Pulls usage events in bounded batches, appends each batch in one transaction, and acknowledges
 * the messages only after the commit. A crash between commit and ack redelivers them, and the
 * event-id check turns the redelivery into "already applied": at-least-once delivery,
 * exactly-once effect. Returns a stop function that finishes the batch in hand.
 */
export function startIngest(options: {
  nc: NatsConnection;
  ledger: Ledger;
  stream: string;
  durable: string;
  batchMax: number;
  log: (obj: object, msg: string) => void;
  /**
   * Called when an append has not settled within `appendStallMs`. postgres.js 3.4.9 can leave
   * queries of a transaction pending forever when PostgreSQL drops the connection under it
   * (porsager/postgres#1186); the only way out is a fresh process. Nothing is lost: the batch was
   * never acknowledged, so JetStream redelivers it and the event ids make that exactly-once.
   */
  onStall: (stalledMs: number) => void;
  appendStallMs?: number;
  /**
   * Checks each event's signer (verify-usage.ts); absent only where the ledger has no roster to
   * check against (a single machine's ledger), which the service says when it starts.
   */
  verify?: UsageVerifier;
}): { stop: () => Promise<void> } {
  const { nc, ledger, stream, durable, batchMax, log, onStall, verify } = options;
  const stallMs = options.appendStallMs ?? IngestLimits.appendStallMs;
  let running = true;
  const done = (async () => {
    const consumer = await jetstream(nc).consumers.get(stream, durable);
    // Messages are validated and turned into events as they arrive, i.e. while the previous
    // batch's transaction is in the database: that CPU work leaves the append's critical path.
    const fetchBatch = async (): Promise<ParsedBatch> => {
      const batch: ParsedBatch = { events: [], valid: [], invalid: [] };
      for await (const m of await consumer.fetch({ max_messages: batchMax, expires: IngestLimits.fetchExpiresMs }))
        await parseInto(batch, m, log, verify);
      return batch;
    };
    // The prefetch may fail (NATS down) while the previous batch is still committing, before
    // anything awaits it; without a handler attached now, Node would treat that rejection as
    // unhandled and kill the ledger. The await below still sees the error and retries.
    const prefetch = (): Promise<ParsedBatch> => {
      const pending = fetchBatch();
      pending.catch(() => undefined);
      return pending;
    };
    let idleMs = 100;
    // The next batch is fetched once this one's statements are all sent, while the database
    // inserts and commits it: receiving and parsing a batch costs this process real CPU, and
    // started with the transaction it held up reading the head lock's answer and planning the
    // batch several times over (BENCHMARKS.md, "Ledger"). At most two batches are in
    // hand unacknowledged. When no fetch was started (an empty batch, a failed append), the loop
    // fetches anew.
    let next: Promise<ParsedBatch> | undefined;
    while (running) {
      let batch: ParsedBatch;
      try {
        batch = await (next ?? prefetch());
      } catch (error) {
        next = undefined;
        if (!running) break;
        log({ err: (error as Error).message }, "ingest: fetch failed; retrying");
        await sleep(idleMs);
        idleMs = Math.min(idleMs * 2, IngestLimits.idleBackoffMsMax);
        continue;
      }
      next = undefined;
      try {
        if (batch.valid.length + batch.invalid.length > 0)
          await withStallWatch(
            applyBatch(ledger, batch, log, () => {
              next = prefetch();
            }),
            stallMs,
            onStall,
          );
        idleMs = 100;
      } catch (error) {
        // The batch stays unacknowledged; JetStream redelivers it after the ack wait.
        log({ err: (error as Error).message }, "ingest: batch failed; its messages will be redelivered");
        await sleep(idleMs);
        idleMs = Math.min(idleMs * 2, IngestLimits.idleBackoffMsMax);
      }
    }
    await next?.catch(() => undefined);
  })();
  return {
    stop: async () => {
      running = false;
      await done.catch(() => undefined);
    },
  };
}

/** A fetched batch, already validated: events in message order, and the messages to ack or park. */
interface ParsedBatch {
  events: IncomingEvent[];
  valid: JsMsg[];
  invalid: { m: JsMsg; reason: string }[];
}

async function parseInto(
  batch: ParsedBatch,
  m: JsMsg,
  log: (obj: object, msg: string) => void,
  verify: UsageVerifier | undefined,
): Promise<void> {
  const parsed = checkUsageEvent(safeJson(m));
  const msgId = m.headers?.get("Nats-Msg-Id");
  if (!parsed.ok || (msgId !== undefined && msgId !== "" && msgId !== parsed.data.eventId)) {
    const reason = parsed.ok ? "message id is not the event id" : parsed.body.error.message;
    log({ subject: m.subject, seq: m.seq, reason }, "ingest: parking an invalid usage event");
    batch.invalid.push({ m, reason: `invalid usage event: ${reason}` });
    return;
  }
  const verdict =
    verify === undefined
      ? undefined
      : await verify({ subject: m.subject, data: m.data, header: (name) => m.headers?.get(name) }, parsed.data);
  if (verdict?.ok === false) {
    log({ subject: m.subject, seq: m.seq, reason: verdict.reason }, "ingest: parking a usage event");
    batch.invalid.push({ m, reason: verdict.reason });
    return;
  }
  const event = fromUsage(parsed.data);
  if (verdict !== undefined) event.actor = verdict.owner;
  if (m.info.deliveryCount < IngestLimits.holdWaitDeliveries) event.holdMayFollow = true;
  batch.events.push(event);
  batch.valid.push(m);
}

/**
 * Appends a batch and acknowledges it after the commit; `onSent` runs once the batch's statements
 * are all sent. When the batch's transaction fails, its events are applied one by one: one event
 * that cannot be appended (a poison event) is parked alone, and the others land. Parked and
 * invalid messages are terminated only once their rows are committed.
 */
async function applyBatch(
  ledger: Ledger,
  batch: ParsedBatch,
  log: (obj: object, msg: string) => void,
  onSent: () => void,
): Promise<void> {
  const poisoned: { m: JsMsg; reason: string }[] = [];
  const outcomes = await ledger.append(batch.events, onSent).catch(async (error: unknown) => {
    log(
      { err: (error as Error).message, events: batch.events.length },
      "ingest: batch failed; applying its events one by one",
    );
    return applyAlone(ledger, batch, poisoned, log);
  });
  const deferred = new Set<string>();
  for (const o of outcomes)
    if (o.status === "rejected")
      log({ eventId: o.eventId, code: o.refusal.code, reason: o.refusal.message }, "ingest: event refused (recorded)");
    else if (o.status === "deferred") deferred.add(o.eventId);
  if (deferred.size > 0)
    log(
      { events: [...deferred].slice(0, 10) },
      "ingest: settlements or voids before their holds; delivered again later",
    );
  const toPark = [...batch.invalid, ...poisoned];
  if (toPark.length > 0)
    await ledger.park(
      toPark.map(({ m, reason }) => ({
        streamSeq: m.seq,
        subject: m.subject,
        eventId: eventIdOf(m),
        reason,
        payload: m.string(),
      })),
    );
  // Only now, with the batch committed, may the server forget these messages.
  const parkedMsgs = new Set(poisoned.map((p) => p.m));
  for (const [i, m] of batch.valid.entries()) {
    if (parkedMsgs.has(m)) continue;
    if (deferred.has(batch.events[i]?.eventId ?? "")) m.nak(IngestLimits.holdWaitMs);
    else m.ack();
  }
  for (const { m } of toPark) m.term();
}

/**
 * Each event in its own transaction. One that fails for the event's own sake, while the database
 * answers (`select 1`), is poison: it is collected for parking. One that fails for the database's
 * sake (a transient error: restarting, connection lost) or while the database does not answer
 * rethrows: the batch is redelivered and the events already applied answer as duplicates.
 */
async function applyAlone(
  ledger: Ledger,
  batch: ParsedBatch,
  poisoned: { m: JsMsg; reason: string }[],
  log: (obj: object, msg: string) => void,
): Promise<AppendOutcome[]> {
  const out: AppendOutcome[] = [];
  for (let i = 0; i < batch.events.length; i += 1) {
    const ev = batch.events[i] as IncomingEvent;
    try {
      out.push(...(await ledger.append([ev])));
    } catch (error) {
      if (isTransientDbError(error)) throw error;
      await ledger.ping().catch(() => {
        throw error;
      });
      log({ eventId: ev.eventId, err: rootMessage(error) }, "ingest: parking a usage event that cannot be appended");
      poisoned.push({
        m: batch.valid[i] as JsMsg,
        reason: `append failed: ${rootMessage(error)}`.slice(0, PARK_REASON_CHARS_MAX),
      });
    }
  }
  return out;
}

/** A parked row's reason is for a person reading a list: the database's words, not the whole statement. */
const PARK_REASON_CHARS_MAX = 1_000;

/** The innermost error's message: the ORM wraps the database's error in "Failed query: <the SQL>". */
function rootMessage(error: unknown): string {
  let e = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

function eventIdOf(m: JsMsg): string {
  const json = safeJson(m);
  const id = typeof json === "object" && json !== null ? (json as { eventId?: unknown }).eventId : undefined;
  return typeof id === "string" ? id.slice(0, 128) : "";
}

/** Awaits `work`; if it has not settled after `ms`, reports the stall once (and keeps waiting). */
async function withStallWatch<T>(work: Promise<T>, ms: number, onStall: (stalledMs: number) => void): Promise<T> {
  const timer = setTimeout(() => onStall(ms), ms);
  try {
    return await work;
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function safeJson(m: JsMsg): unknown {
  try {
    return m.json();
  } catch {
    return undefined;
  }
}
