import type { ChatMessage, InferStreamChunk, ProbeModel } from "@potluck/protocol";
import { meteredStream } from "./metered.js";
import { boundedUsage, countingStream, promptTokensMax, type StreamCount } from "./observed.js";
import type { UsagePublisher } from "./publisher.js";

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

export interface SpendJob {
  jobId: string;
  model: string;
  /** Absent: no cap was asked for; the context and the bytes received still bound the bill. */
  maxTokens?: number;
  messages: readonly ChatMessage[];
  /** This machine's owner, who pays. */
  account: string;
  servedBy: { machine: string; owner: string };
  published: PublishedModel | undefined;
}

/**
 * The spend side of a trusted peer's job, priced from what this machine saw rather than from the
 * peer's report: completion tokens at most the reply bytes received and the request's max_tokens,
 * prompt tokens at most this machine's own estimate, at the size the peer published before the
 * job. A report above that is billed at the bound and logged as a dispute.
 */
export function meteredSpend(
  stream: AsyncIterable<InferStreamChunk>,
  job: SpendJob,
  usage: UsagePublisher,
  log?: (message: string) => void,
): AsyncGenerator<InferStreamChunk> {
  const count: StreamCount = { textBytes: 0 };
  const { published, servedBy } = job;
  const bounds = {
    ...(job.maxTokens === undefined ? {} : { maxTokens: job.maxTokens }),
    promptTokensMax: promptTokensMax(job.messages),
    ...(published?.contextSize === undefined ? {} : { contextSize: published.contextSize }),
  };
  return meteredStream(countingStream(stream, count), usage, (done) => {
    const observed = boundedUsage(done, count, bounds);
    if (observed.dispute !== undefined)
      log?.(`usage dispute: job ${job.jobId} served by ${servedBy.machine} (${servedBy.owner}) ${observed.dispute}`);
    return {
      jobId: job.jobId,
      side: "spend",
      account: job.account,
      counterparty: servedBy.owner,
      servedBy: servedBy.machine,
      model: job.model,
      promptTokens: observed.promptTokens,
      completionTokens: observed.completionTokens,
      parameters: published?.parameters,
      ...(observed.dispute === undefined ? {} : { dispute: observed.dispute }),
    };
  });
}
