import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import type { ModelInfo } from "@potluck/protocol";

import type { GpuSetting } from "./gpu-settings.js";

export { GpuSettings, type GpuSetting } from "./gpu-settings.js";
export type Backend = NonNullable<ModelInfo["runtime"]>["backend"];

/**
 * The llama.cpp runtime for a GPU setting, from prebuilt binaries only (`build: "never"`: a
 * sidecar never compiles llama.cpp on a user's machine). A named backend that cannot be loaded is a
 * start-up error, not a silent fall back to CPU: whoever set POTLUCK_GPU=cuda expects the GPU, and
 * a 7B model on CPU instead would look like a broken Potluck, minutes later.
 */
export async function openLlama(setting: GpuSetting, threads: number): Promise<Llama> {
  const gpu = setting === "auto" ? "auto" : setting === "off" ? false : setting;
  try {
    const llama = await getLlama({ build: "never", gpu, maxThreads: threads, logLevel: LlamaLogLevel.error });
    if (setting !== "auto" && setting !== "off" && llama.gpu !== setting) {
      await llama.dispose();
      throw new Error(`node-llama-cpp loaded ${llama.gpu === false ? "CPU" : llama.gpu} binaries instead`);
    }
    return llama;
  } catch (error) {
    if (setting === "auto" || setting === "off") throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `POTLUCK_GPU=${setting}: the ${setting} backend is not available on this machine (${reason}); ` +
        `set POTLUCK_GPU=auto to use what is there, or off for CPU only`,
      { cause: error },
    );
  }
}

export function backendOf(llama: Llama): Backend {
  return llama.gpu === false ? "cpu" : llama.gpu;
}

/** For capabilities: "cuda: NVIDIA H200 (139.8 GiB VRAM, 120.1 GiB free)", or null on CPU. */
export async function describeGpu(llama: Llama): Promise<string | null> {
  if (llama.gpu === false) return null;
  const [names, vram] = await Promise.all([
    llama.getGpuDeviceNames().catch(() => []),
    llama.getVramState().catch(() => undefined),
  ]);
  const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
  const memory = vram === undefined ? "" : ` (${gib(vram.total)} VRAM, ${gib(vram.free)} free)`;
  return `${llama.gpu}: ${names.join(", ") || "unnamed device"}${memory}`;
}
