import { OllamaPullRequest, PotluckHttpError } from "@potluck/protocol";
import { messageOf } from "@potluck/service";
import { Hono } from "hono";
import { onClientGone } from "../node-request.js";
import { streamResponse } from "../stream-body.js";
import type { OllamaDeps, PullProgress } from "./deps.js";
import { ollamaBody } from "./errors.js";

/**
 * Progress lines waiting for a slow client: a new line of the same status replaces the last one,
 * since only the latest count matters, so a download that reports thousands of times holds this
 * many lines at most.
 */
export const pullLinesQueuedMax = 64;

/** POST /api/pull: the puller's progress as Ollama's NDJSON, ending in `{"status":"success"}`. */
export function pullRoute(deps: OllamaDeps) {
  return new Hono().post("/api/pull", async (c) => {
    const body = await ollamaBody(c, OllamaPullRequest);
    const ref = (body.model ?? body.name)!;
    if (deps.puller === undefined)
      throw new PotluckHttpError(
        501,
        "not_implemented",
        `pulling models is not available on this sidecar; put the GGUF file of ${ref} in a folder listed in POTLUCK_MODELS`,
      );
    const abort = new AbortController();
    onClientGone(c, () => abort.abort(new Error("client went away")));
    const lines = new PullLines();
    deps.puller
      .pull(ref, (p) => lines.progress(p), abort.signal)
      .then(
        (result) => lines.end({ status: "success", model: result.id }),
        (error: unknown) => lines.fail(pullError(ref, error)),
      );
    if (body.stream === false) {
      for (let line = await lines.next(); ; line = await lines.next()) if (line.last) return c.json(line.value);
    }
    // The first line decides the status: a reference the puller refuses at once is an HTTP error.
    const first = await lines.next();
    return streamResponse(c, lines.from(first), {
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-cache" },
      encode: (value) => `${JSON.stringify(value)}\n`,
      onCancel: () => abort.abort(new Error("client went away")),
    });
  });
}

type Line = { value: object; last: boolean };

/** A bounded queue of progress lines between the puller's callback and the response. */
class PullLines {
  private readonly queued: Line[] = [];
  private failure: PotluckHttpError | undefined;
  private wake: (() => void) | undefined;
  private ended = false;

  progress(p: PullProgress): void {
    if (this.ended) return;
    const value = {
      status: p.status,
      ...(p.total === undefined ? {} : { total: p.total }),
      ...(p.completed === undefined ? {} : { completed: p.completed }),
    };
    const last = this.queued.at(-1);
    if (last !== undefined && ((last.value as { status: string }).status === p.status || this.full()))
      last.value = value;
    else this.queued.push({ value, last: false });
    this.notify();
  }

  end(value: object): void {
    this.ended = true;
    this.queued.push({ value, last: true });
    this.notify();
  }

  fail(error: PotluckHttpError): void {
    this.ended = true;
    this.failure = error;
    this.notify();
  }

  /** The next line; a failure before any line has gone out is thrown (it becomes the HTTP status). */
  async next(): Promise<Line> {
    for (;;) {
      const line = this.queued.shift();
      if (line !== undefined) return line;
      if (this.failure !== undefined) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** The lines from `first` on; a failure once streaming has begun is Ollama's `{"error"}` line. */
  async *from(first: Line): AsyncGenerator<object> {
    yield first.value;
    if (first.last) return;
    for (;;) {
      let line: Line;
      try {
        line = await this.next();
      } catch (error) {
        yield { error: messageOf(error) };
        return;
      }
      yield line.value;
      if (line.last) return;
    }
  }

  private full(): boolean {
    return this.queued.length >= pullLinesQueuedMax;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** The puller's failure as an HTTP error: its own 4xx/5xx status if it has one, else 502 (upstream). */
function pullError(ref: string, error: unknown): PotluckHttpError {
  const status = (error as { status?: unknown } | null)?.status;
  const code = typeof status === "number" && status >= 400 && status <= 599 ? status : 502;
  return new PotluckHttpError(code, "pull_failed", `pulling ${ref}: ${messageOf(error)}`, undefined, { cause: error });
}
