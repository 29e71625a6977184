import { PotluckHttpError, zodHook } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import { z } from "zod";
import { limitBody, onClientGone } from "../routes/node-request.js";
import { streamResponse } from "../routes/stream-body.js";
import { prepend } from "../routes/reply-parts.js";
import { Latest } from "./latest.js";
import { parsePullRef, pullRefCharsMax, PullRefError } from "./pull-ref.js";
import type { PulledModels, PullerProgress } from "./puller.js";

export const PullRequest = z.object({
  ref: z.string().min(1).max(pullRefCharsMax),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "expected 64 hexadecimal digits")
    .optional(),
});

/** A pull request names a model and a checksum; nothing bigger. */
const pullBodyBytesMax = 8 * 1024;

/** One NDJSON line of POST /v1/potluck/models/pull. */
export type PullLine =
  | ({ status: string } & Omit<PullerProgress, "status">)
  | { status: "success"; id: string; path: string; sizeBytes: number; sha256: string | null; already: boolean }
  | { status: "error"; error: { code: string; message: string; field?: string } };

/**
 * Potluck's own model management (loopback only, like the rest of the local API):
 * POST /v1/potluck/models/pull streams NDJSON progress then one success or error line;
 * GET /v1/potluck/models/pulled lists what Potluck pulled; DELETE /v1/potluck/models/:id removes
 * a pulled model, and refuses, saying why, anything Potluck did not pull.
 */
export function pulledModelRoutes(models: PulledModels) {
  return new Hono()
    .get("/v1/potluck/models/pulled", (c) => c.json({ models: models.list() }))
    .post(
      "/v1/potluck/models/pull",
      limitBody(pullBodyBytesMax),
      validator("json", zodHook(PullRequest)),
      async (c) => {
        const body = c.req.valid("json");
        try {
          parsePullRef(body.ref); // a bad reference is a 400 before the stream starts
        } catch (error) {
          if (error instanceof PullRefError) throw new PotluckHttpError(400, "invalid_ref", error.message, "ref");
          throw error;
        }
        const abort = new AbortController();
        onClientGone(c, () => abort.abort(new Error("client went away")));
        const lines = new Latest<PullLine>();
        let failure: unknown;
        models
          .pull(body.ref, {
            ...(body.sha256 === undefined ? {} : { sha256: body.sha256 }),
            signal: abort.signal,
            onProgress: (p) => lines.push(p),
          })
          .then(
            (done) =>
              lines.finish({
                status: "success",
                id: done.id,
                path: done.path,
                sizeBytes: done.sizeBytes,
                sha256: done.sha256,
                already: done.already,
              }),
            (error: unknown) => {
              failure = error;
              lines.finish({ status: "error", error: errorOf(error) });
            },
          );
        // A refusal before anything was downloaded (busy, already pulling, a name clash) is an HTTP
        // status; once the stream has started, a failure is its last line.
        const stream = lines[Symbol.asyncIterator]();
        const first = await stream.next();
        if (first.done !== true && first.value.status === "error" && failure instanceof PotluckHttpError) throw failure;
        return streamResponse(c, prepend(first, stream), {
          headers: { "content-type": "application/x-ndjson", "cache-control": "no-cache" },
          encode: (line) => `${JSON.stringify(line)}\n`,
          onCancel: () => abort.abort(new Error("client went away")),
        });
      },
    )
    .delete("/v1/potluck/models/:id", async (c) => {
      const removed = await models.remove(c.req.param("id"));
      return c.json({ removed: removed.id, files: removed.files });
    });
}

function errorOf(error: unknown): { code: string; message: string; field?: string } {
  if (error instanceof PotluckHttpError)
    return { code: error.code, message: error.message, ...(error.field === undefined ? {} : { field: error.field }) };
  return { code: "pull_failed", message: error instanceof Error ? error.message : String(error) };
}
