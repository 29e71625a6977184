// Cold start to first token for a model that is available but not loaded, against the warm figure,
// through the sidecar's OpenAI route in-process (the route, the router and the engine as served).
//
//   flock /tmp/potluck-bench.lock node --import tsx tools/bench/models/cold-start.ts [--shape tiny|small] [--repeats 5]
//
// Cold: POTLUCK_KEEP_ALIVE=0 unloads the model after each request, so every request loads it
// again (the file's probe-load in a child process runs once per file per process, so a cold
// request after the first pays the load itself; the very first also pays the probe: reported apart).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSidecarConfig, startSidecarService } from "@potluck/sidecar";
import { benchFlags } from "../common/args.js";
import { cachedSmallTestModel, cachedTinyModel } from "../../src/model/tiny.js";

const { flags } = benchFlags(process.argv.slice(2), { strings: ["shape", "repeats"], positionals: false });
const repeats = Number(flags.get("repeats") ?? 5);
const shape = flags.get("shape") ?? "tiny";
const modelPath = shape === "small" ? cachedSmallTestModel(1) : cachedTinyModel(1);

/** ms from sending the request to the first token's SSE event, and the load progress events seen. */
async function firstToken(fetchApp: (r: Request) => Response | Promise<Response>, model: string) {
  const started = performance.now();
  const res = await fetchApp(
    new Request("http://127.0.0.1/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, stream: true, max_tokens: 4, messages: [{ role: "user", content: "Hi" }] }),
    }),
  );
  if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let text = "";
  let ms: number | undefined;
  let loading = 0;
  const reader = res.body.getReader();
  for (let part = await reader.read(); part.done !== true; part = await reader.read()) {
    text += decoder.decode(part.value, { stream: true });
    loading = (text.match(/^: loading /gm) ?? []).length;
    if (ms === undefined && /"content":/.test(text)) ms = performance.now() - started;
  }
  if (ms === undefined) throw new Error(`no token in the reply: ${text.slice(0, 300)}`);
  return { ms, loading };
}

async function series(keepAlive: string): Promise<{ first: number; rest: number[]; loading: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-cold-start-"));
  const config = loadSidecarConfig(
    {
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_MACHINE: "bench",
      POTLUCK_MODELS: modelPath,
      POTLUCK_KEEP_ALIVE: keepAlive,
      POTLUCK_CPU_PIN: "off",
      POTLUCK_THREADS: "1",
    },
    [],
  );
  // In-process requests have no socket: they are this machine's own (loopback) calls.
  const service = await startSidecarService(config, {
    nats: null,
    memory: null,
    diagnostics: null,
    remoteAddress: () => "127.0.0.1",
  });
  try {
    await service.warm;
    const id = service.models[0]!.id;
    const fetchApp = (r: Request) => service.app.fetch(r, {});
    const first = await firstToken(fetchApp, id);
    const rest: number[] = [];
    let loading = 0;
    for (let i = 0; i < repeats; i++) {
      const run = await firstToken(fetchApp, id);
      rest.push(run.ms);
      loading += run.loading;
    }
    return { first: first.ms, rest, loading };
  } finally {
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cold = await series("0");
const warm = await series("-1");
const f = (ms: number) => `${ms.toFixed(1)} ms`;
process.stdout.write(
  `model ${shape} (${modelPath})\n` +
    `first request after start (probe + load): ${f(cold.first)}\n` +
    `cold (available, not loaded; keep_alive 0): median ${f(median(cold.rest))} over ${repeats}, ` +
    `${(cold.loading / repeats).toFixed(1)} progress events each\n` +
    `warm (loaded; keep_alive -1): median ${f(median(warm.rest))} over ${repeats}\n`,
);
process.stdout.write(`${JSON.stringify({ shape, repeats, cold, warm })}\n`);
