import type { ChatMessage, InferStreamChunk } from "@potluck/protocol";
import { holdAmountFor, publishInRounds } from "./hold.js";
import { microCreditsFor } from "./pricing.js";
import { usageEventId, type UsagePublisher } from "./publisher.js";

export interface SettledJob {
  jobId: string;
  model: string;
  messages: readonly ChatMessage[];
  maxTokens: number;
  /** The hold the requester named in its request. */
  holdEventId: string;
  /** The hold's amount as read from the usage stream (hold-check.ts): a settlement never exceeds it. */
  heldAmount?: number | undefined;
  /** The requester's owner (the verified signer's, on the roster): the hold's account. */
  account: string;
  /** This machine and its owner, whom the hold pays. */
  machine: string;
  owner: string;
  /**
   * The model's size as this machine publishes it, read at the done chunk: a model loaded for
   * this job knows its size only once loaded (a peer that saw no size held at a typical 8 B one).
   */
  parameters: () => number | undefined;
}

/**
 * The serving side of a job between owners: at the done chunk, settles the requester's hold for
 * the tokens this machine streamed at its published price, never above the hold (the same
 * bound the requester computed from the same request), waits for JetStream's acknowledgement and
 * names the settlement in the done chunk, so the requester can check it against what it received.
 * A publish JetStream does not acknowledge (a stream changing leader) is still named, and
 * published again under its id in the background (publishInRounds): the work was done, and a
 * done chunk without a settlement would make the requester void the hold, leaving it unpaid (the
 * cluster suite saw served prompts with no settlement). Never acknowledged at all, the hold stays
 * open until the ledger's expiry voids it.
 * A stream that ends without a done chunk settles nothing (the requester voids).
 */
export async function* settledStream(
  chunks: AsyncIterable<InferStreamChunk>,
  job: SettledJob,
  usage: UsagePublisher,
): AsyncGenerator<InferStreamChunk> {
  for await (const chunk of chunks) {
    if (chunk.type !== "done") {
      yield chunk;
      continue;
    }
    const { promptTokens, completionTokens } = chunk.usage;
    const parameters = job.parameters();
    const hold = holdAmountFor({ messages: job.messages, maxTokens: job.maxTokens, parameters });
    const amount = Math.min(
      hold,
      job.heldAmount ?? hold,
      microCreditsFor({ promptTokens, completionTokens, parameters }),
    );
    const settle = {
      jobId: job.jobId,
      side: "settle",
      account: job.account,
      counterparty: job.owner,
      servedBy: job.machine,
      model: job.model,
      promptTokens,
      completionTokens,
      parameters,
      amount,
      ref: job.holdEventId,
    } as const;
    if ((await usage.publishJob(settle)) === false) void publishInRounds(usage, [settle], {});
    yield { ...chunk, settlement: { eventId: usageEventId(job.jobId, "settle"), amount } };
  }
}
