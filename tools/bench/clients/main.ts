// Bench: what the API front ends add to time to first token, and what a JSON grammar costs.
//   - TTFT of POST /v1/chat/completions (OpenAI) and POST /api/chat (Ollama), both streamed, over a
//     bare node:http server streaming the same engine in the same process (the floor): the
//     difference is what translation, routing, validation and encoding cost. Goal (issue 20):
//     ≤ 0.5 ms each. An Ollama path that answers 404 (not on this branch) is "not available".
//   - decode tokens/s of grammar-constrained JSON (json_object, json_schema) ÷ unconstrained, on
//     the engine directly.
// One sidecar in-process (startSidecarService, no NATS), one engine, medians over interleaved
// rounds (the paths take turns in a rotating order so drifting load hits all alike). "Over the
// floor" is the median of each round's own difference (path − floor in that round), which a
// shared, loaded host moves far less than a difference of two medians; both are printed, with
// the load average before and after.
//
//   node --import tsx tools/bench/clients/main.ts [--repeats 401] [--decode-tokens 256] [--json FILE]
import { createServer, request as httpRequest, Agent, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { loadSidecarConfig, startSidecarService, coalesceWindowMs } from "@potluck/sidecar";
import { benchFlags } from "../common/args.js";
import { median } from "../common/stats.js";
import { cachedTinyModel } from "../../src/model/tiny.js";

const prompt = "Tell me, in detail, how a household potluck dinner is organised.";
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

interface Path {
  name: string;
  path: string;
  body: unknown;
  /** True once a line of the stream carries reply text. */
  isContent: (line: string) => boolean;
}

/** ms from sending the request to the first line carrying text; the rest of the reply is read and dropped. */
function ttft(url: string, p: Path): Promise<number | "404"> {
  const payload = JSON.stringify(p.body);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpRequest(
      `${url}${p.path}`,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        res.setEncoding("utf8");
        if (res.statusCode === 404) {
          res.resume();
          res.on("end", () => resolve("404"));
          return;
        }
        if (res.statusCode !== 200) {
          let text = "";
          res.on("data", (d: string) => (text += d));
          res.on("end", () => reject(new Error(`${p.name}: HTTP ${res.statusCode}: ${text}`)));
          return;
        }
        let first: number | undefined;
        let buffered = "";
        res.on("data", (text: string) => {
          if (first !== undefined) return;
          buffered += text;
          for (const line of buffered.split("\n"))
            if (first === undefined && p.isContent(line)) first = performance.now();
          buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
        });
        res.on("end", () =>
          first === undefined ? reject(new Error(`${p.name}: no content`)) : resolve(first - started),
        );
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

async function main(): Promise<void> {
  const { flags } = benchFlags(process.argv.slice(2), {
    strings: ["repeats", "decode-tokens", "json"],
    booleans: [],
    positionals: false,
  });
  const repeats = Number(flags.get("repeats") ?? 401);
  const decodeTokens = Number(flags.get("decode-tokens") ?? 256);
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-bench-clients-"));
  const model = "tiny";
  const config = loadSidecarConfig(
    {
      POTLUCK_MACHINE: "bench",
      POTLUCK_OWNER: "home",
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_BIND: "127.0.0.1",
      POTLUCK_CPU_PIN: "off",
      POTLUCK_THREADS: "1",
    },
    [],
  );
  const service = await startSidecarService(config, {
    nats: null,
    memory: null,
    diagnostics: null,
    models: [{ id: model, path: cachedTinyModel(), testModel: true }],
    usage: { publishJob: async () => undefined },
    version: "bench",
  });
  await service.warm;
  const engine = service.engine;
  const servers: Server[] = [];
  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const sidecarUrl = await new Promise<string>((resolve) => {
    const s = serve({ fetch: service.app.fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
      resolve(`http://127.0.0.1:${info.port}`),
    );
    servers.push(s as Server);
  });
  // The floor: the same engine streamed by a bare node:http server, same SSE shape, same joining window.
  const bareUrl = await listen(
    createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (d: string) => (body += d));
      req.on("end", async () => {
        const { max_tokens: maxTokens } = JSON.parse(body) as { max_tokens: number };
        res.writeHead(200, { "content-type": "text/event-stream" });
        const events = engine.stream(model, {
          messages: [{ role: "user", content: prompt }],
          maxTokens,
          temperature: 0,
          batchWindowMs: coalesceWindowMs,
        });
        for await (const event of events)
          if (event.type === "token")
            res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: event.text } }] })}\n\n`);
        res.end("data: [DONE]\n\n");
      });
    }),
  );
  const messages = [{ role: "user" as const, content: prompt }];
  const paths: Array<Path & { url: string }> = [
    {
      name: "bare node:http (floor)",
      url: bareUrl,
      path: "/",
      body: { max_tokens: 4 },
      isContent: (l) => l.startsWith("data: {") && l.includes('"content"'),
    },
    {
      name: "OpenAI /v1/chat/completions",
      url: sidecarUrl,
      path: "/v1/chat/completions",
      body: { model, messages, max_tokens: 4, temperature: 0, stream: true },
      isContent: (l) => l.startsWith("data: {") && l.includes('"content":"'),
    },
    {
      name: "Ollama /api/chat",
      url: sidecarUrl,
      path: "/api/chat",
      body: { model, messages, stream: true, options: { num_predict: 4, temperature: 0 } },
      isContent: (l) => l.startsWith("{") && /"content":"[^"]/.test(l),
    },
  ];
  const samples = new Map<string, number[]>(paths.map((p) => [p.name, []]));
  /** Per round, this path's TTFT minus the floor's in the same round. */
  const paired = new Map<string, number[]>(paths.map((p) => [p.name, []]));
  const unavailable = new Set<string>();
  for (const p of paths) for (let i = 0; i < 3; i++) if ((await ttft(p.url, p)) === "404") unavailable.add(p.name);
  const loadBefore = loadavg()[0]!;
  for (let round = 0; round < repeats; round++) {
    const thisRound = new Map<string, number>();
    for (let k = 0; k < paths.length; k++) {
      const p = paths[(round + k) % paths.length]!;
      if (unavailable.has(p.name)) continue;
      const ms = await ttft(p.url, p);
      if (ms === "404") continue;
      samples.get(p.name)!.push(ms);
      thisRound.set(p.name, ms);
    }
    const floorMs = thisRound.get(paths[0]!.name)!;
    for (const [name, ms] of thisRound) paired.get(name)!.push(ms - floorMs);
  }
  const loadAfter = loadavg()[0]!;
  const floor = median(samples.get(paths[0]!.name)!);
  const ttftRows = paths.map((p) => {
    if (unavailable.has(p.name))
      return { path: p.name, ttftMs: null, overMs: null, overMsOfMedians: null, goalMet: null };
    const ms = median(samples.get(p.name)!);
    const over = p === paths[0] ? 0 : median(paired.get(p.name)!);
    return {
      path: p.name,
      ttftMs: ms,
      overMs: over,
      overMsOfMedians: ms - floor,
      goalMet: p === paths[0] ? null : over <= 0.5,
    };
  });

  // Decode rate under a grammar vs without, on the engine (no HTTP): tokens ÷ time after the first token.
  const formats = {
    unconstrained: undefined,
    json_object: { type: "json_object" as const },
    json_schema: {
      type: "json_schema" as const,
      schema: {
        type: "object",
        properties: { notes: { type: "array", items: { type: "string" } } },
        required: ["notes"],
      },
    },
  };
  const rates = new Map<string, number[]>(Object.keys(formats).map((k) => [k, []]));
  const decodeRounds = Math.max(5, Math.floor(repeats / 4));
  for (let round = 0; round < decodeRounds; round++) {
    for (const [name, format] of Object.entries(formats)) {
      let first: number | undefined;
      let tokens = 0;
      let end = 0;
      for await (const event of engine.stream(model, {
        messages,
        maxTokens: decodeTokens,
        temperature: 0,
        ...(format === undefined ? {} : { responseFormat: format }),
      })) {
        if (event.type === "token") first ??= performance.now();
        if (event.type === "done") {
          tokens = event.usage.completionTokens;
          end = performance.now();
        }
      }
      if (first !== undefined && tokens > 1) rates.get(name)!.push((tokens - 1) / ((end - first) / 1000));
    }
  }
  const base = median(rates.get("unconstrained")!);
  const decodeRows = Object.keys(formats).map((name) => {
    const rate = median(rates.get(name)!);
    return { format: name, tokensPerS: rate, ratio: rate / base };
  });

  console.log(
    `\nTime to first token, ${repeats} interleaved rounds, median (tiny TEST model, 1 thread, loopback); ` +
      `load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`,
  );
  console.log(
    "| path | TTFT ms | over the floor ms (median of per-round differences) | difference of medians ms | goal ≤ 0.5 ms |\n" +
      "|---|---:|---:|---:|---|",
  );
  for (const r of ttftRows)
    console.log(
      r.ttftMs === null
        ? `| ${r.path} | not available (404: not on this branch) | | | |`
        : `| ${r.path} | ${r.ttftMs.toFixed(3)} | ${r.overMs!.toFixed(3)} | ${r.overMsOfMedians!.toFixed(3)} | ${r.goalMet === null ? "baseline" : r.goalMet ? "met" : "NOT met"} |`,
    );
  console.log(`\nDecode rate, ${decodeTokens} tokens max, ${decodeRounds} rounds, median`);
  console.log("| output | tokens/s | ÷ unconstrained |\n|---|---:|---:|");
  for (const r of decodeRows) console.log(`| ${r.format} | ${r.tokensPerS.toFixed(0)} | ${r.ratio.toFixed(3)} |`);
  const json = flags.get("json");
  if (json !== undefined)
    writeFileSync(
      json,
      JSON.stringify({ repeats, loadBefore, loadAfter, ttft: ttftRows, decode: decodeRows }, null, 2),
    );

  for (const s of servers) s.close();
  agent.destroy();
  await service.close();
  rmSync(dataDir, { recursive: true, force: true });
}

await main();
