import { randomUUID } from "node:crypto";
import { UsageEvent, type SubjectSet } from "@potluck/protocol";
import { signedMessageHeaders } from "@potluck/peer";
import type { JetStreamClient } from "@nats-io/jetstream";
import { microCreditsFor } from "./pricing.js";

/** Records compute served between different owners, for the ledger. */
export interface UsagePublisher {
  publishJob(job: UsageJob): Promise<void>;
}

export interface UsageJob {
  jobId: string;
  side: "earn" | "spend";
  /** earn: this (serving) machine's owner; spend: the requester's owner. */
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
}

/**
 * Builds the event (amount: see pricing.ts); the event id is deterministic per job and side so a retry dedupes in
 * JetStream.
 */
export function usageEventFor(job: UsageJob, at = new Date()): UsageEvent {
  return UsageEvent.parse({
    eventId: `${job.jobId}:${job.side}`,
    jobId: job.jobId,
    kind: job.side,
    account: job.account,
    counterparty: job.counterparty,
    servedBy: job.servedBy,
    model: job.model,
    tokens: job.promptTokens + job.completionTokens,
    amount: microCreditsFor(job),
    at: at.toISOString(),
  });
}

/** Publishing attempts per event before giving up and logging it (bounded; never blocks a reply for long). */
const publishAttemptsMax = 3;

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
          await options.js.publish(subject, payload, { msgID: event.eventId, headers: signed });
          return;
        } catch (error) {
          if (attempt === publishAttemptsMax)
            options.log(
              `publishing usage event ${event.eventId}: ${error instanceof Error ? error.message : String(error)} (gave up after ${attempt} attempts)`,
            );
        }
      }
    },
  };
}

/** For a machine with no NATS: says once per job that usage went unrecorded, never pretends. */
export function loggingUsagePublisher(log: (message: string) => void): UsagePublisher {
  return {
    async publishJob(job) {
      log(
        `usage event ${job.jobId}:${job.side} NOT published (no NATS): ${job.promptTokens + job.completionTokens} tokens of ${job.model} (${microCreditsFor(job)} micro-credits) served by ${job.servedBy}`,
      );
    },
  };
}

export function newJobId(): string {
  return `job-${randomUUID()}`;
}
