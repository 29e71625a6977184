import type { InferStreamChunk } from "@potluck/protocol";
import type { UsageJob, UsagePublisher } from "./publisher.js";

export type DoneChunk = Extract<InferStreamChunk, { type: "done" }>;

/**
 * Passes a job's chunks through and, at its done chunk, publishes the usage event `bill` returns
 * for it (undefined: the job is not billed) before that chunk goes on. Both sides of a billed job
 * meter through this one wrapper at the same moment: the buyer's spend side in routing, the
 * seller's earn side in the peer API. A caller that stops early closes `chunks` (and the job).
 */
export async function* meteredStream(
  chunks: AsyncIterable<InferStreamChunk>,
  usage: UsagePublisher,
  bill: (done: DoneChunk) => UsageJob | undefined | Promise<UsageJob | undefined>,
): AsyncGenerator<InferStreamChunk> {
  for await (const chunk of chunks) {
    if (chunk.type === "done") {
      const job = await bill(chunk);
      if (job !== undefined) await usage.publishJob(job);
    }
    yield chunk;
  }
}
