import type { ChatMessage, InferStreamChunk, ProbeModel } from "@potluck/protocol";
import { boundedUsage, countingStream, promptTokensMax, type StreamCount } from "./observed.js";
import { microCreditsFor } from "./pricing.js";
import { usageEventId, type UsageJob, type UsagePublisher } from "./publisher.js";

/** What a peer said about its model before a job: its size prices the job, its context bounds the tokens. */
export interface PublishedModel {
  parameters?: number;
  contextSize?: number;
}

export function publishedOf(info: NonNullable<ProbeModel["info"]>): PublishedModel {
  return {
    ...(info.parameters === undefined ? {} : { parameters: info.parameters }),
    ...(info.contextSize === undefined ? {} : { contextSize: info.contextSize }),
  };
}

/**
 * The most a job may cost, in micro-credits: its max_tokens (the router always sends one: the
 * request's, else the published context) and the prompt bound of `promptTokensMax`, at the
 * published size. Both machines compute it from the same request, so the server knows the hold's
 * amount without asking the ledger, and settles for no more.
 */
export function holdAmountFor(job: {
  messages: readonly ChatMessage[];
  maxTokens: number;
  parameters: number | undefined;
}): number {
  return microCreditsFor({
    promptTokens: promptTokensMax(job.messages),
    completionTokens: job.maxTokens,
    parameters: job.parameters,
  });
}

export interface HeldJob {
  jobId: string;
  model: string;
  maxTokens: number;
  messages: readonly ChatMessage[];
  /** This machine's owner, who pays. */
  account: string;
  servedBy: { machine: string; owner: string };
  published: PublishedModel | undefined;
}

/** A hold the requester placed: its event id goes in the peer request (holdEventId). */
export interface PlacedHold {
  eventId: string;
  amount: number;
  /** Its sequence on the usage stream, which the server reads it at (absent from a test's recorder). */
  seq?: number;
}

/**
 * Places the hold for a job between owners before the peer is asked, and waits for JetStream's
 * acknowledgement (the server settles a hold the ledger will see). Undefined: it could not be
 * published, and the job must not go to the peer; the hold is then closed in the background
 * (closeUnacknowledgedHold), since JetStream may have stored it all the same.
 */
export async function placeHold(
  usage: UsagePublisher,
  job: HeldJob,
  options: UnacknowledgedHoldOptions = {},
): Promise<PlacedHold | undefined> {
  const amount = holdAmountFor({ ...job, parameters: job.published?.parameters });
  const published = await usage.publishJob(holdEvent(job, amount));
  if (published === false) {
    void closeUnacknowledgedHold(usage, job, amount, options);
    return undefined;
  }
  const eventId = usageEventId(job.jobId, "hold");
  return published === undefined ? { eventId, amount } : { eventId, amount, seq: published.seq };
}

export interface UnacknowledgedHoldOptions {
  /** The wait between rounds (default closingPauseMs). */
  pauseMs?: number;
  log?: (message: string) => void;
}

/**
 * Rounds of publishing an event JetStream did not acknowledge, each one publish of the
 * publisher's own (its attempts and acknowledgement wait), with a pause between: together well
 * inside the usage stream's two-minute duplicate window (usageStreamConfig), so a copy already
 * stored is recognised as one, and longer than a NATS server's failover.
 */
const closingRounds = 8;
const closingPauseMs = 3_000;

/**
 * A hold JetStream never acknowledged may still be stored: the acknowledgement lost while the
 * stream changed leader, or the message stored after the publisher stopped waiting. Its job never
 * ran, but nothing would close it, and the payer's credits would stay held until the ledger's own
 * expiry. So the same hold is published again (same message id) until JetStream answers, which
 * is a duplicate of the stored copy or the first copy of one that never was, and then voided:
 * the ledger sees a hold and its void either way, never a void of nothing. Resolves true once
 * the void is acknowledged, false when the rounds run out (the ledger's expiry closes it then).
 */
export async function closeUnacknowledgedHold(
  usage: UsagePublisher,
  job: HeldJob,
  amount: number,
  options: UnacknowledgedHoldOptions = {},
): Promise<boolean> {
  const holdId = usageEventId(job.jobId, "hold");
  const zero = { promptTokens: 0, completionTokens: 0 };
  const closed = await publishInRounds(
    usage,
    [holdEvent(job, amount), event(job, "void", amount, zero, holdId)],
    options,
  );
  options.log?.(
    closed
      ? `usage: hold ${holdId} was not acknowledged in time; published again and voided`
      : `usage: hold ${holdId} was never acknowledged nor voided; the ledger's hold expiry closes it if it was stored`,
  );
  return closed;
}

/**
 * Publishes `jobs` in order, each until JetStream acknowledges it, in at most closingRounds rounds
 * (the first after one pause). True once the last is acknowledged; it never throws.
 */
export async function publishInRounds(
  usage: UsagePublisher,
  jobs: readonly UsageJob[],
  options: UnacknowledgedHoldOptions,
): Promise<boolean> {
  const { pauseMs = closingPauseMs, log } = options;
  let next = 0;
  for (let round = 1; round <= closingRounds && next < jobs.length; round++) {
    await new Promise((r) => setTimeout(r, pauseMs));
    try {
      while (next < jobs.length && (await usage.publishJob(jobs[next] as UsageJob)) !== false) next += 1;
    } catch (error) {
      log?.(`usage: publishing again: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return next === jobs.length;
}

function holdEvent(job: HeldJob, amount: number): UsageJob {
  return event(job, "hold", amount, { promptTokens: promptTokensMax(job.messages), completionTokens: job.maxTokens });
}

/**
 * The requester's side of a held job, passing its chunks through. The server closes the hold: it
 * settles before sending its done chunk and names the settlement there. This machine closes it in
 * every other case, at once, so no hold outlives its stream (no timer to leak either):
 * - the stream ends without a done chunk (the peer failed before or during the reply, or this
 *   machine stopped reading): void. The server only ever settles before its done chunk, so
 *   nothing is left to wait for; work cut off mid-reply is not paid.
 * - a done chunk names no settlement (the server's publish failed, or it would not): void.
 * - the settlement exceeds what this machine observed (observed.ts: the reply bytes received,
 *   max_tokens, its own prompt bound, priced at the published size): a refund of the excess
 *   against the settlement — a dispute. Not a void: a settled hold is closed, and the rules let
 *   the payer take back at most what was settled, so the honest part stays paid. An honest
 *   report is never above those bounds, so an honest server is never disputed.
 * What this cannot see: a server that names one settlement and publishes a larger one. That
 * is bounded by the hold, never by more (the ledger refuses a settlement above it).
 */
export async function* heldStream(
  stream: AsyncIterable<InferStreamChunk>,
  job: HeldJob,
  hold: PlacedHold,
  usage: UsagePublisher,
  log?: (message: string) => void,
): AsyncGenerator<InferStreamChunk> {
  const count: StreamCount = { textBytes: 0 };
  const bounds = {
    maxTokens: job.maxTokens,
    promptTokensMax: promptTokensMax(job.messages),
    ...(job.published?.contextSize === undefined ? {} : { contextSize: job.published.contextSize }),
  };
  let closed = false;
  const close = async (side: "void" | "refund", amount: number, ref: string, why: string) => {
    closed = true;
    log?.(`usage: job ${job.jobId} served by ${job.servedBy.machine} (${job.servedBy.owner}): ${side} ${ref} (${why})`);
    const closing = event(job, side, amount, { promptTokens: 0, completionTokens: 0 }, ref);
    // Not acknowledged (a NATS failover): published again in the background, or the hold stays open.
    if ((await usage.publishJob(closing)) === false)
      void publishInRounds(usage, [closing], { ...(log === undefined ? {} : { log }) }).then(
        (sent) =>
          sent ||
          log?.(`usage: ${side} of job ${job.jobId} was never acknowledged; the ledger's hold expiry closes it`),
      );
  };
  try {
    for await (const chunk of countingStream(stream, count)) {
      if (chunk.type === "done") {
        const observed = boundedUsage(chunk, count, bounds);
        if (observed.dispute !== undefined)
          log?.(
            `usage dispute: job ${job.jobId} served by ${job.servedBy.machine} (${job.servedBy.owner}) ${observed.dispute}`,
          );
        const settled = chunk.settlement;
        if (settled === undefined) await close("void", hold.amount, hold.eventId, "the server named no settlement");
        else {
          const fair = microCreditsFor({ ...observed, parameters: job.published?.parameters });
          const excess = Math.min(settled.amount, hold.amount) - fair;
          closed = true;
          if (excess > 0)
            await close("refund", excess, settled.eventId, `settled ${settled.amount}, observed at most ${fair}`);
        }
      }
      yield chunk;
    }
  } finally {
    if (!closed) await close("void", hold.amount, hold.eventId, "the stream ended without a done chunk");
  }
}

function event(
  job: HeldJob,
  side: "hold" | "void" | "refund",
  amount: number,
  tokens: { promptTokens: number; completionTokens: number },
  ref?: string,
): UsageJob {
  return {
    jobId: job.jobId,
    side,
    account: job.account,
    counterparty: job.servedBy.owner,
    servedBy: job.servedBy.machine,
    model: job.model,
    ...tokens,
    parameters: job.published?.parameters,
    amount,
    ...(ref === undefined ? {} : { ref }),
  };
}
