import {
  Headers,
  PeerInferRequest,
  ProbeRequest,
  probeModelIdsMax,
  PotluckHttpError,
  SidecarLimits,
  zodHook,
  type Capabilities,
  type InferStreamChunk,
  type ProbeResponse,
} from "@potluck/protocol";
import type { MiddlewareHandler } from "hono";
import { Hono } from "hono";
import { validator } from "hono/validator";
import type { InferenceEngine } from "../inference/engine.js";
import type { PeerDirectory } from "../peer/directory.js";
import type { PeerVariables } from "../peer/signature.js";
import { runLocal } from "../routing/local-run.js";
import type { SidecarMetrics } from "../metrics.js";
import type { HoldChecker } from "../usage/hold-check.js";
import type { UsagePublisher } from "../usage/publisher.js";
import { settledStream } from "../usage/settle.js";
import { asHttpError } from "./http-errors.js";
import { limitBody } from "./node-request.js";
import { coalesceWindowMs, streamResponse } from "./stream-body.js";

export interface PeerRouteDeps {
  machine: string;
  owner: string;
  engine: InferenceEngine;
  directory: PeerDirectory;
  usage: UsagePublisher;
  /** Reads and checks a requester's hold before a job for another owner runs (usage/hold-check.ts). */
  holds: HoldChecker;
  capabilities: () => Capabilities;
  /** Signature verification (peer/signature.ts); shared with other /peer/* routes. */
  auth: MiddlewareHandler<{ Variables: PeerVariables }>;
  /** Counts jobs served for other machines (route "for_peer") in /metrics. */
  metrics?: Pick<SidecarMetrics, "observe">;
}

/**
 * The peer API other sidecars call over the mesh. Every route here is signed. /peer/infer runs on
 * this machine's engine only: a peer never re-routes a job, so two machines cannot bounce one.
 */
export function peerRoutes(deps: PeerRouteDeps) {
  return new Hono<{ Variables: PeerVariables }>()
    .use("/peer/capabilities", deps.auth)
    .use("/peer/probe", limitBody(SidecarLimits.probeBytesMax + 1024), deps.auth)
    .use("/peer/infer", limitBody(SidecarLimits.bodyBytesMax), deps.auth)
    .get("/peer/capabilities", (c) => c.json(deps.capabilities()))
    .post("/peer/probe", validator("json", zodHook(ProbeRequest)), (c) => {
      const { payload, model } = c.req.valid("json");
      const body: ProbeResponse = { machine: deps.machine, bytes: Buffer.byteLength(payload), payload };
      if (model !== undefined)
        body.model = {
          info: deps.engine.state(model) ?? null,
          available: deps.engine
            .list()
            .slice(0, probeModelIdsMax)
            .map((m) => m.id),
        };
      return c.json(body);
    })
    .post("/peer/infer", validator("json", zodHook(PeerInferRequest)), async (c) => {
      const request = c.req.valid("json");
      const { machine: caller, owner } = c.get("peer");
      if (request.requester.machine !== caller) {
        throw new PotluckHttpError(
          403,
          "requester_mismatch",
          `requester.machine is ${request.requester.machine} but the request is signed by ${caller}`,
          "requester.machine",
        );
      }
      // The owner is the verified signer's on the roster; requester.owner is never trusted.
      // Another owner's job is paid from the hold its machine placed (usage/hold.ts), or not served.
      const foreign = owner !== deps.owner;
      if (foreign && (request.holdEventId === undefined || request.holdSeq === undefined))
        throw new PotluckHttpError(
          402,
          "hold_required",
          `${caller} belongs to ${owner}: a job for another owner needs the hold its machine placed (holdEventId and holdSeq)`,
          request.holdEventId === undefined ? "holdEventId" : "holdSeq",
        );
      // The hold is read from the usage stream while the model starts on the prompt: checked
      // before the first token leaves, at the cost of one JetStream read, not added to it.
      const holdChecked =
        foreign && request.holdEventId !== undefined && request.holdSeq !== undefined
          ? deps.holds.check({
              eventId: request.holdEventId,
              seq: request.holdSeq,
              jobId: request.jobId,
              caller,
              callerOwner: owner,
              payee: deps.owner,
            })
          : undefined;
      const testModel = deps.engine.state(request.model)?.testModel ?? false;
      const abort = new AbortController();
      const run = runLocal(deps.engine, deps.machine, testModel, {
        ...request,
        signal: abort.signal,
        batchWindowMs: coalesceWindowMs,
      });
      const chunks = deps.metrics?.observe("for_peer", run) ?? run;
      const first = await chunks.next().catch((error: unknown) => {
        throw asHttpError(error);
      });
      const hold = await holdChecked;
      if (hold !== undefined && !hold.ok) {
        abort.abort(new Error(`hold refused: ${hold.code}`));
        await chunks.return(undefined);
        throw new PotluckHttpError(hold.status, hold.code, hold.message, "holdEventId");
      }
      const all = withUsage(first, chunks, deps, {
        ...request,
        callerOwner: owner,
        ...(hold?.ok === true ? { heldAmount: hold.amount } : {}),
      });
      return streamResponse(c, all, {
        headers: { "content-type": "application/x-ndjson", [Headers.servedBy]: deps.machine },
        encode: (chunk) =>
          chunk.type === "token" && chunk.text.length === 0 ? undefined : `${JSON.stringify(chunk)}\n`,
        onCancel: () => abort.abort(new Error("requester went away")),
      });
    });
}

/** Passes chunks through; when a different owner was served, settles its hold after the stream. */
function withUsage(
  first: IteratorResult<InferStreamChunk>,
  rest: AsyncIterator<InferStreamChunk>,
  deps: PeerRouteDeps,
  job: PeerInferRequest & { callerOwner: string; heldAmount?: number },
): AsyncGenerator<InferStreamChunk> {
  const all = continued(first, rest);
  if (job.callerOwner === deps.owner || job.holdEventId === undefined) return all;
  const server = {
    machine: deps.machine,
    owner: deps.owner,
    parameters: () => deps.engine.state(job.model)?.parameters,
  };
  return settledStream(
    all,
    { ...job, ...server, account: job.callerOwner, holdEventId: job.holdEventId, heldAmount: job.heldAmount },
    deps.usage,
  );
}

/** The chunk already read, then the rest; closing early closes the rest (which stops the engine). */
async function* continued(
  first: IteratorResult<InferStreamChunk>,
  rest: AsyncIterator<InferStreamChunk>,
): AsyncGenerator<InferStreamChunk> {
  try {
    for (let next = first; next.done !== true; next = await rest.next()) yield next.value;
  } finally {
    await rest.return?.(undefined);
  }
}
