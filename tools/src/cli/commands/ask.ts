import { Defaults, ErrorBody, Headers } from "@potluck/protocol";
import { CliError, type Command } from "../command.js";
import { unreachableMessage } from "../../lib/unreachable.js";

const usage = `Usage: potluck ask [--model M] [--on MACHINE] [--max-tokens N] [--url URL] PROMPT

Sends PROMPT to this machine's sidecar (default http://127.0.0.1:$POTLUCK_PORT, ${Defaults.sidecarPort}),
which runs it here or routes it to a machine that has the model. The reply streams to stdout, then
the footer: which machine served it, how it was reached, tokens and time. --model defaults to the
first model ready here, else one that loads on first use (its progress shows on stderr); --on runs
it on that machine or fails saying why.`;

/** Generous bound on a whole answer; the sidecar's own limits end a real stream long before. */
const askTimeoutMs = 10 * 60_000;

export const askCommand: Command = {
  name: "ask",
  summary: "ask a model (here or on another machine) and stream the reply",
  usage,
  flags: { strings: ["model", "on", "max-tokens", "url"] },
  async run(_argv, { flags, positionals }) {
    const prompt = positionals.join(" ").trim();
    if (prompt.length === 0) throw new CliError("PROMPT is required; see potluck ask --help", 2);
    const base = (flags.get("url") ?? `http://127.0.0.1:${process.env.POTLUCK_PORT ?? Defaults.sidecarPort}`).replace(
      /\/$/,
      "",
    );
    const maxTokens = flags.has("max-tokens") ? Number(flags.get("max-tokens")) : undefined;
    if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 1))
      throw new CliError(`--max-tokens: expected a positive integer, got ${flags.get("max-tokens")}`, 2);
    const model = flags.get("model") ?? (await firstReadyModel(base));
    const started = performance.now();
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model,
        messages: [{ role: "user", content: prompt }],
        stream: true,
        max_tokens: maxTokens,
        potluck: flags.has("on") ? { on: flags.get("on") } : undefined,
      }),
      signal: AbortSignal.timeout(askTimeoutMs),
    }).catch((error: unknown) => {
      throw new CliError(unreachableMessage("sidecar", base, error));
    });
    if (!res.ok || res.body === null) throw new CliError(await describeError(res));
    const servedBy = res.headers.get(Headers.servedBy) ?? "unknown";
    const footer = await printStream(res.body);
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const who = footer.potluck?.served_by ?? footer.served_by ?? servedBy;
    const route =
      footer.potluck?.route === "local"
        ? "this machine"
        : footer.potluck?.route === "own"
          ? "own machine"
          : "trusted peer";
    const test = footer.potluck?.test_model === true ? " (TEST MODEL: random weights)" : "";
    process.stdout.write(
      `\n\n— served by ${who} (${route}) · ${model}${test} · ${footer.usage?.completion_tokens ?? "?"} tokens · ${seconds} s\n`,
    );
    return 0;
  },
};

interface Footer {
  served_by?: string;
  usage?: { completion_tokens: number };
  potluck?: { served_by: string; route: string; test_model: boolean };
}

/** Prints each delta as it arrives; returns the last chunk (the footer). A stream error is a CliError. */
async function printStream(body: ReadableStream<Uint8Array>): Promise<Footer> {
  const decoder = new TextDecoder();
  let buffered = "";
  let footer: Footer = {};
  const reader = body.getReader();
  for (let read = await reader.read(); read.done !== true; read = await reader.read()) {
    buffered += decoder.decode(read.value, { stream: true });
    let end = buffered.indexOf("\n\n");
    while (end >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      end = buffered.indexOf("\n\n");
      const loading = /^: potluck loading (\S+) (\d{1,3})%$/.exec(event);
      if (loading !== null) {
        showLoading({ model: loading[1] ?? "the model", percent: Number(loading[2]) });
        continue;
      }
      const data = event.startsWith("data: ") ? event.slice(6) : undefined;
      if (data === undefined || data === "[DONE]") continue;
      const chunk = JSON.parse(data) as Footer & {
        choices?: Array<{ delta?: { content?: string } }>;
        error?: { message: string };
      };
      if (chunk.error !== undefined) throw new CliError(`\nthe reply broke off: ${chunk.error.message}`);
      const text = chunk.choices?.[0]?.delta?.content;
      if (text !== undefined) {
        showLoading(undefined);
        process.stdout.write(text);
      }
      if (chunk.served_by !== undefined) footer = chunk;
    }
  }
  if (footer.served_by === undefined) throw new CliError("\nthe reply ended without its footer: the stream was cut");
  return footer;
}

/**
 * The sidecar's load progress (the SSE comment `: potluck loading MODEL 42%`, routes/openai/sse.ts)
 * on stderr, one line rewritten in place; undefined ends it.
 */
let loadingShown = false;
function showLoading(progress: { model: string; percent: number } | undefined): void {
  if (progress === undefined) {
    if (loadingShown) process.stderr.write("\n");
    loadingShown = false;
    return;
  }
  process.stderr.write(`\rloading ${progress.model}… ${progress.percent}%`);
  loadingShown = true;
}

/** A model ready here; else one that loads on first use (its progress is shown while it loads). */
async function firstReadyModel(base: string): Promise<string> {
  const res = await fetch(`${base}/v1/models`).catch((error: unknown) => {
    throw new CliError(unreachableMessage("sidecar", base, error));
  });
  const body = (await res.json()) as { data?: Array<{ id: string; potluck?: { state: string; kind?: string } }> };
  const chat = (body.data ?? []).filter((m) => m.potluck?.kind !== "embedding");
  const usable =
    chat.find((m) => m.potluck?.state === "ready") ??
    chat.find((m) => m.potluck?.state === "loading" || m.potluck?.state === "available");
  if (usable === undefined)
    throw new CliError(`this machine has no chat model; pass --model M to run one on another machine`);
  return usable.id;
}

async function describeError(res: Response): Promise<string> {
  const parsed = ErrorBody.safeParse(await res.json().catch(() => undefined));
  return parsed.success
    ? `${parsed.data.error.message} (${res.status} ${parsed.data.error.code})`
    : `the sidecar answered HTTP ${res.status}`;
}
