// Streams chat completions from a sidecar and prints one JSON line per run: time to first token,
// completion tokens (from the footer's usage) and total time. Run in whatever network namespace
// the measurement is taken from (the root one, or a lab host's).
//
//   node --import tsx tools/bench/inference/client.ts --url URL --model M --max-tokens N --repeats R [--warmup W]
//   ... --stdin   one run per line read on stdin (a long-lived, warm client the bench drives)
import { Agent, request as httpRequest } from "node:http";
import { createInterface } from "node:readline";
import { benchFlags } from "../common/args.js";

export interface RunTiming {
  ttftMs: number;
  totalMs: number;
  completionTokens: number;
  servedBy: string;
}

/** Connections stay open between runs, as any streaming client's would. */
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/**
 * One streamed completion, timed from just before the request to the first content and the footer.
 * On node:http rather than fetch: fetch's web streams cost this process ~10 ms of CPU per
 * 256-token stream, on a 2-core box where that CPU is taken from the server being measured. The
 * same client times every HTTP path (sidecar, peer, floors), so the ratios compare like with like.
 */
export function timedStream(url: string, body: unknown): Promise<RunTiming> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpRequest(
      `${url}/v1/chat/completions`,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        res.setEncoding("utf8");
        let buffered = "";
        if (res.statusCode !== 200) {
          res.on("data", (d: string) => (buffered += d));
          res.on("end", () => reject(new Error(`HTTP ${res.statusCode}: ${buffered}`)));
          return;
        }
        let ttftMs: number | undefined;
        let footer: { served_by?: string; usage?: { completion_tokens: number } } = {};
        res.on("data", (text: string) => {
          buffered += text;
          for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
            const event = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            // A model that loads on first use sends its progress as SSE comments (": potluck loading …").
            const data = event
              .split("\n")
              .find((line) => line.startsWith("data: "))
              ?.slice(6);
            if (data === undefined || data === "[DONE]") continue;
            const chunk = JSON.parse(data) as typeof footer & {
              choices?: Array<{ delta?: { content?: string } }>;
              error?: { message: string };
            };
            if (chunk.error !== undefined) {
              res.destroy();
              reject(new Error(chunk.error.message));
              return;
            }
            if (ttftMs === undefined && (chunk.choices?.[0]?.delta?.content ?? "").length > 0)
              ttftMs = performance.now() - started;
            if (chunk.served_by !== undefined) footer = chunk;
          }
        });
        res.on("end", () => {
          const totalMs = performance.now() - started;
          if (ttftMs === undefined || footer.usage === undefined)
            reject(new Error("stream ended without tokens or footer"));
          else
            resolve({
              ttftMs,
              totalMs,
              completionTokens: footer.usage.completion_tokens,
              servedBy: footer.served_by ?? "?",
            });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

async function main(argv: string[]): Promise<void> {
  const { flags } = benchFlags(argv, {
    strings: ["max-tokens", "model", "prompt", "repeats", "url", "warmup"],
    booleans: ["stdin"],
    positionals: false,
  });
  const url = flags.get("url") ?? "http://127.0.0.1:8321";
  const body = {
    model: flags.get("model"),
    messages: [{ role: "user", content: flags.get("prompt") ?? "Tell me about potlucks." }],
    max_tokens: Number(flags.get("max-tokens") ?? 256),
    temperature: 0,
    stream: true,
  };
  if (flags.has("stdin")) {
    // The same process for every run, like the bench's own client for the local path: a fresh
    // process pays ~20-60 ms for its first fetch (undici loading, cold code), which is the
    // client's start-up, not the path being measured. The caller's warm-up run absorbs it.
    process.stdout.write("ready\n");
    for await (const _ of createInterface({ input: process.stdin }))
      process.stdout.write(`${JSON.stringify(await timedStream(url, body))}\n`);
    return;
  }
  const warmup = Number(flags.get("warmup") ?? 1);
  const repeats = Number(flags.get("repeats") ?? 5);
  for (let i = 0; i < warmup; i++) await timedStream(url, body);
  for (let i = 0; i < repeats; i++) process.stdout.write(`${JSON.stringify(await timedStream(url, body))}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`bench client: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
