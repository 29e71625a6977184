import type { LabHost, LabProcess } from "../lab/index.js";

/** One prompt of the loop: when it was sent and answered (epoch ms, the machine's one clock). */
export interface Attempt {
  start: number;
  end: number;
  ok: boolean;
  servedBy?: string;
  /** The sidecar's error message, when the prompt failed. */
  error?: string;
}

export interface PromptLoop {
  /** Stops the loop and returns every attempt it made, in order. */
  stop(): Promise<Attempt[]>;
  /** The attempts so far. */
  attempts(): Attempt[];
}

export interface PromptLoopOptions {
  port: number;
  model: string;
  /** Pause after each answer before the next prompt (default 100 ms). */
  gapMs?: number;
  /** The reply's max_tokens (default 2). */
  maxTokens?: number;
  /** Pins every prompt to this machine (the request's `potluck.on`); default: the router chooses. */
  on?: string;
}

/** Bounds: a prompt that has not answered in this long counts as failed; the loop never outlives maxMs. */
export const attemptTimeoutMs = 10_000;
const loopMaxMs = 10 * 60_000;

/**
 * A person pressing Enter again and again: a short non-streaming prompt to `host`'s own sidecar
 * every `gapMs`, recorded one JSON line per attempt. It runs inside the host, so what it sees is
 * what a client on that machine sees; it stops when asked or after `loopMaxMs`.
 */
export function startPromptLoop(host: LabHost, opts: PromptLoopOptions): PromptLoop {
  const script = `
const [port, model, gap, timeout, max, maxTokens] = process.argv.slice(1).map((v, i) => (i === 1 ? v : Number(v)));
const on = process.argv[7];
const body = JSON.stringify({ model, messages: [{ role: "user", content: "ping" }], max_tokens: maxTokens, ...(on ? { potluck: { on } } : {}) });
const until = Date.now() + max;
while (Date.now() < until) {
  const start = Date.now();
  let line;
  try {
    const res = await fetch("http://127.0.0.1:" + port + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(timeout) });
    const json = await res.json().catch(() => ({}));
    line = res.ok ? { ok: true, servedBy: json.served_by } : { ok: false, error: json.error?.message ?? "HTTP " + res.status };
  } catch (e) {
    line = { ok: false, error: String(e?.message ?? e) };
  }
  process.stdout.write(JSON.stringify({ start, end: Date.now(), ...line }) + "\\n");
  await new Promise((r) => setTimeout(r, gap));
}`;
  const proc: LabProcess = host.spawn("prompt-loop", [
    process.execPath,
    "--input-type=module",
    "-e",
    script,
    String(opts.port),
    opts.model,
    String(opts.gapMs ?? 100),
    String(attemptTimeoutMs),
    String(loopMaxMs),
    String(opts.maxTokens ?? 2),
    opts.on ?? "",
  ]);
  const attempts = () => parseAttempts(proc.output());
  return {
    attempts,
    async stop() {
      await proc.stop();
      return attempts();
    },
  };
}

export function parseAttempts(output: string): Attempt[] {
  const out: Attempt[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as Attempt);
    } catch {
      // A line cut by the stop signal: the attempt never finished, so it has nothing to say.
    }
  }
  return out;
}

/** A run of consecutive failed attempts, from the first one's start to the last one's end. */
export interface FailureSpan {
  from: number;
  to: number;
  failures: number;
  errors: string[];
  /** The end of the first successful attempt after the span; absent while prompts still fail. */
  recoveredAt?: number;
}

export function failureSpans(attempts: readonly Attempt[]): FailureSpan[] {
  const spans: FailureSpan[] = [];
  let open: FailureSpan | undefined;
  for (const a of attempts) {
    if (a.ok) {
      if (open !== undefined) open.recoveredAt = a.end;
      open = undefined;
      continue;
    }
    if (open === undefined) {
      open = { from: a.start, to: a.end, failures: 0, errors: [] };
      spans.push(open);
    }
    open.to = a.end;
    open.failures += 1;
    if (open.errors.length < 5) open.errors.push(a.error ?? "");
  }
  return spans;
}

/**
 * How long prompts failed because of an event at `at`: from `at` to the end of the last failed
 * attempt before service came back (0 when none failed). Spans before `at` are not its doing.
 */
export function outageAfter(attempts: readonly Attempt[], at: number): { outageMs: number; spans: FailureSpan[] } {
  const spans = failureSpans(attempts).filter((s) => s.to >= at);
  const last = spans.at(-1);
  return { outageMs: last === undefined ? 0 : Math.max(0, last.to - at), spans };
}
