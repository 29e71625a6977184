// GPU check: which llama.cpp backend POTLUCK_GPU=auto picks on this machine, its device and VRAM,
// how many layers of a generated model node-llama-cpp offloads, and decode tokens/s on that
// backend against POTLUCK_GPU=off (CPU) — through the sidecar's own engine, as it serves.
//
//   node --import tsx tools/bench/gpu/check.ts [--shape small|tiny] [--max-tokens 128] [--gpu auto|cuda|vulkan|metal]
//
// On a machine without a usable GPU it reports the CPU only (auto resolves to CPU). The model is a
// generated random-weight TEST model (~100 MB for "small"): nothing is downloaded.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSidecarConfig, startSidecarService } from "@potluck/sidecar";
import { benchFlags } from "../common/args.js";
import { cachedSmallTestModel, cachedTinyModel } from "../../src/model/tiny.js";

const { flags } = benchFlags(process.argv.slice(2), { strings: ["shape", "max-tokens", "gpu"], positionals: false });
const maxTokens = Number(flags.get("max-tokens") ?? 128);
const gpu = flags.get("gpu") ?? "auto";
const modelPath = flags.get("shape") === "tiny" ? cachedTinyModel(1) : cachedSmallTestModel(1);

interface Run {
  setting: string;
  gpu: string | null;
  backend: string | undefined;
  gpuLayers: number | undefined;
  vramBytes: number | undefined;
  ramBytes: number | undefined;
  coldFirstTokenMs: number;
  tokensPerSecond: number;
}

async function measure(setting: string): Promise<Run> {
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-gpu-check-"));
  const config = loadSidecarConfig(
    {
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_MACHINE: "gpu-check",
      POTLUCK_MODELS: modelPath,
      POTLUCK_GPU: setting,
      POTLUCK_CPU_PIN: "off",
      POTLUCK_KEEP_ALIVE: "-1",
    },
    [],
  );
  const service = await startSidecarService(config, { nats: null, memory: null, diagnostics: null });
  try {
    await service.warm;
    const id = service.models[0]!.id;
    const messages = [{ role: "user" as const, content: "Tell me a long story about a GPU." }];
    let started = performance.now();
    let firstTokenMs = 0;
    for await (const event of service.engine.stream(id, { messages, maxTokens: 1 }))
      if (event.type === "token" && firstTokenMs === 0) firstTokenMs = performance.now() - started;
    // Warm decode rate: from the first token to the last, so the prompt's evaluation is left out.
    let first = 0;
    let tokens = 0;
    started = performance.now();
    for await (const event of service.engine.stream(id, { messages, maxTokens })) {
      if (event.type === "token" && first === 0) first = performance.now();
      if (event.type === "done") tokens = event.usage.completionTokens;
    }
    const seconds = (performance.now() - first) / 1000;
    const runtime = service.engine.state(id)?.runtime;
    return {
      setting,
      gpu: service.engine.gpu?.() ?? null,
      backend: runtime?.backend,
      gpuLayers: runtime?.gpuLayers,
      vramBytes: runtime?.vramBytes,
      ramBytes: runtime?.ramBytes,
      coldFirstTokenMs: Math.round(firstTokenMs),
      tokensPerSecond: Math.round(((tokens - 1) / seconds) * 10) / 10,
    };
  } finally {
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const runs = [await measure(gpu), await measure("off")];
for (const run of runs)
  process.stdout.write(
    `POTLUCK_GPU=${run.setting}: backend ${run.backend} (${run.gpu ?? "no GPU"}), ${run.gpuLayers} layers offloaded, ` +
      `estimate ${((run.vramBytes ?? 0) / 2 ** 20).toFixed(0)} MiB VRAM + ${((run.ramBytes ?? 0) / 2 ** 20).toFixed(0)} MiB RAM, ` +
      `cold first token ${run.coldFirstTokenMs} ms, ${run.tokensPerSecond} tokens/s\n`,
  );
const [onGpu, onCpu] = runs;
if (onGpu!.backend !== "cpu")
  process.stdout.write(`GPU ÷ CPU decode: ${(onGpu!.tokensPerSecond / onCpu!.tokensPerSecond).toFixed(2)}×\n`);
else process.stdout.write(`POTLUCK_GPU=${gpu} resolved to CPU on this machine: no usable GPU backend\n`);
process.stdout.write(`${JSON.stringify({ model: modelPath, maxTokens, runs })}\n`);
