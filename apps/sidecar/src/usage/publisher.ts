import { randomUUID } from "node:crypto";
import { UsageEvent, type SubjectSet } from "@potluck/protocol";
import { signedMessageHeaders } from "@potluck/peer";
import type { JetStreamClient } from "@nats-io/jetstream";
import { microCreditsFor } from "./pricing.js";

/**
 * Records compute served between different owners, for the ledger. Resolves false when the event
 * was not durably published (JetStream never acknowledged it); a publisher without NATS resolves
 * nothing (it logs the event as not published).
 */
export interface UsagePublisher {
  /** `{ seq }`: acknowledged at that stream sequence; false: not published; undefined: a test's recorder. */
  publishJob(job: UsageJob): Promise<{ seq: number } | false | void>;
}

/**
 * A job's event for the ledger (hold.ts, settle.ts): hold (the requester's machine, before the
 * job), settle (the server's, after it), void or refund (the requester's, closing or disputing).
 * earn and spend are the older shapes; nothing in the sidecar publishes an earn any more.
 */
export type UsageSide = "earn" | "spend" | "hold" | "settle" | "void" | "refund";

export interface UsageJob {
  jobId: string;
  side: UsageSide;
  /** The account whose credits are held or paid: the requester's owner (earn: the server's). */
  account: string;
  counterparty: string;
  servedBy: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  /** Weights in the served model, as the serving machine published them before the job; prices it. */
  parameters: number | undefined;
  /**
   * Spend side only: the serving peer reported more than the requester observed, and the tokens
   * above are the requester's bound, not the report. Logged; the event itself keeps its shape.
   */
  dispute?: string;
  /** Micro-credits when the side fixes them (a hold's bound, a settlement, a refund); else priced from the tokens. */
  amount?: number;
  /** settle, void: the hold's event id; refund: the settlement's. */
  ref?: string;
}

/** The event id of a job's event on one side: deterministic, so a retry dedupes in JetStream and in the ledger. */
export function usageEventId(jobId: string, side: UsageSide): string {
  return `${jobId}:${side}`;
}

/**
 * Builds the event (amount: see pricing.ts); the event id is deterministic per job and side so a retry dedupes in
 * JetStream.
 */
export function usageEventFor(job: UsageJob, at = new Date()): UsageEvent {
  return UsageEvent.parse({
    eventId: usageEventId(job.jobId, job.side),
    jobId: job.jobId,
    kind: job.side,
    account: job.account,
    counterparty: job.counterparty,
    servedBy: job.servedBy,
    model: job.model,
    tokens: job.promptTokens + job.completionTokens,
    amount: job.amount ?? microCreditsFor(job),
    at: at.toISOString(),
    ...(job.ref === undefined ? {} : { ref: job.ref }),
  });
}

/** Publishing attempts per event before giving up and logging it (bounded; never blocks a reply for long). */
const publishAttemptsMax = 3;

/** How long one publish waits for JetStream's acknowledgement (a hold is on the path to the first token). */
const publishAckMs = 2_000;

/** Signs with this machine's identity key (peer/identity.ts), as heartbeats are signed. */
export type MessageSigner = (parts: {
  method: string;
  path: string;
  body: string;
  target: string;
}) => Record<string, string>;

/**
 * JetStream publisher: subject `<root>.usage.<account>`, message id = event id so the stream
 * dedupes retries. Every event is signed by this machine (the four signing headers as NATS
 * headers): holding the hub's NATS secret lets a machine publish, but the ledger applies only
 * events whose signer may speak for the account they move (ledger ingest/verify-usage.ts).
 * Creates the usage stream if it does not exist yet.
 */
export function jetStreamUsagePublisher(options: {
  js: JetStreamClient;
  ensureStream: () => Promise<void>;
  subjects: SubjectSet;
  log: (message: string) => void;
  sign: MessageSigner;
}): UsagePublisher {
  let ensured: Promise<void> | undefined;
  return {
    async publishJob(job) {
      const event = usageEventFor(job);
      ensured ??= options.ensureStream().catch((error: unknown) => {
        ensured = undefined;
        throw error;
      });
      const subject = options.subjects.usage(event.account);
      const payload = JSON.stringify(event);
      const signed = signedMessageHeaders(subject, payload, options.sign);
      for (let attempt = 1; attempt <= publishAttemptsMax; attempt++) {
        try {
          await ensured;
          const ack = await options.js.publish(subject, payload, {
            msgID: event.eventId,
            headers: signed,
            timeout: publishAckMs,
          });
          return { seq: ack.seq };
        } catch (error) {
          if (attempt === publishAttemptsMax)
            options.log(
              `publishing usage event ${event.eventId}: ${error instanceof Error ? error.message : String(error)} (gave up after ${attempt} attempts)`,
            );
        }
      }
      return false;
    },
  };
}

/** For a machine with no NATS: says once per job that usage went unrecorded, never pretends. */
export function loggingUsagePublisher(log: (message: string) => void): UsagePublisher {
  return {
    async publishJob(job) {
      log(
        `usage event ${usageEventId(job.jobId, job.side)} NOT published (no NATS): ${job.side} of ${job.promptTokens + job.completionTokens} tokens of ${job.model} (${job.amount ?? microCreditsFor(job)} micro-credits) served by ${job.servedBy}`,
      );
    },
  };
}

export function newJobId(): string {
  return `job-${randomUUID()}`;
}
