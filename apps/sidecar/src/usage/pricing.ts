import { LedgerAmounts, MICRO_CREDITS_PER_CREDIT } from "@potluck/protocol";

/**
 * What a served job costs, in micro-credits: 1 credit is one normalized A100-minute (DESIGN.md,
 * Ledger; field notes, "Why Decentralized AI Compute Needs Two Assets"), so a job's amount is the
 * time a reference A100 would need for it, whatever machine really served it. That time depends
 * only on the model's size and the tokens, never on the server's hardware or quantization: two
 * households running the same model for the same prompt are credited the same.
 *
 * - Prompt tokens are evaluated in a batch (prefill): compute-bound, 2 FLOPs per weight per token,
 *   at the A100's dense fp16 peak times a realistic utilization.
 * - Completion tokens are generated one at a time (decode, batch 1): memory-bound, every weight is
 *   read once per token, at fp16 (2 bytes per weight) over the A100's memory bandwidth.
 *
 * Example: an 8 B-parameter model, 1,000 prompt + 1,000 completion tokens ≈ 0.10 s + 7.85 s of
 * A100 time ≈ 0.133 credits ≈ 132,500 micro-credits. Every served job costs at least 1.
 */
export const ReferenceA100 = {
  /** Dense fp16/bf16 tensor-core peak, FLOP/s (A100 SXM). */
  peakFlops: 312e12,
  /** Share of peak a well-batched prefill reaches. */
  prefillUtilization: 0.5,
  /** HBM2e bandwidth, bytes/s (A100 80 GB SXM). */
  memoryBytesPerS: 2.039e12,
  /** Weights are normalized to fp16, the A100's native inference format. */
  bytesPerWeight: 2,
} as const;

/**
 * Used when the serving model's size is unknown (a peer on an older version that does not report
 * `parameters`): a typical 8 B local model, so such jobs are still metered, and never for free.
 */
export const unknownModelParameters = 8e9;

/**
 * The largest model size a job is priced at, whatever a peer publishes: a few times the largest
 * open-weight models, so no real model is capped, while a peer claiming 10^15 weights cannot price
 * one token above what a real model could cost.
 */
export const parametersMax = 4e12;

export interface PricedJob {
  promptTokens: number;
  completionTokens: number;
  /** Weights in the model; undefined when the serving machine did not say. */
  parameters: number | undefined;
}

/** Reference-A100 seconds for the job (see the module comment for the model). */
export function a100Seconds(job: PricedJob): number {
  const parameters = Math.min(job.parameters ?? unknownModelParameters, parametersMax);
  const prefill = (job.promptTokens * 2 * parameters) / (ReferenceA100.peakFlops * ReferenceA100.prefillUtilization);
  const decode = (job.completionTokens * parameters * ReferenceA100.bytesPerWeight) / ReferenceA100.memoryBytesPerS;
  return prefill + decode;
}

/**
 * The usage event's amount: A100-minutes in micro-credits, rounded up, at least 1, at most what one ledger event may
 * carry.
 */
export function microCreditsFor(job: PricedJob): number {
  const microCredits = Math.ceil((a100Seconds(job) / 60) * MICRO_CREDITS_PER_CREDIT);
  return Math.min(LedgerAmounts.eventMicroMax, Math.max(1, microCredits));
}
