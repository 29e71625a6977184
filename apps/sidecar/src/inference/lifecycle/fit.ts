import { freemem } from "node:os";
import { GgufInsights, type GgufFileInfo, type Llama } from "node-llama-cpp";

/** What one model needs loaded, by node-llama-cpp's own estimate, and the layers it would offload. */
export interface Footprint {
  gpuLayers: number;
  ramBytes: number;
  vramBytes: number;
}

/**
 * node-llama-cpp's estimate for the weights plus the contexts the engine creates for a model (one
 * chat sequence and one embedding context). The layers come from its own "auto" resolution (what
 * fits in free VRAM; 0 without a GPU), so the figure matches what loadModel will do.
 */
export async function estimateFootprint(
  llama: Llama,
  info: GgufFileInfo,
  contexts: { contextSize: number; embedContextSize: number },
): Promise<Footprint> {
  const insights = await GgufInsights.from(info, llama);
  const { gpuLayers } = await insights.configurationResolver.resolveModelGpuLayersV2("auto", {
    llamaGpu: llama.gpu,
    llamaSupportsGpuOffloading: llama.supportsGpuOffloading,
    getVramState: () => llama.getVramState(),
  });
  const trained = insights.trainContextSize ?? contexts.contextSize;
  const [model, chat, embed] = await Promise.all([
    insights.estimateModelResourceRequirementsV2({ gpuLayers }),
    insights.estimateContextResourceRequirementsV2({
      contextSize: Math.min(trained, contexts.contextSize),
      modelGpuLayers: gpuLayers,
      sequences: 1,
    }),
    insights.estimateContextResourceRequirementsV2({
      contextSize: Math.min(trained, contexts.contextSize, contexts.embedContextSize),
      modelGpuLayers: gpuLayers,
      sequences: 1,
      isEmbeddingContext: true,
    }),
  ]);
  return {
    gpuLayers,
    ramBytes: Math.ceil(model.cpuRam + chat.cpuRam + embed.cpuRam),
    vramBytes: Math.ceil(model.gpuVram + chat.gpuVram + embed.gpuVram),
  };
}

/**
 * Free memory before any eviction. With a budget (POTLUCK tests, or a machine that shares its RAM
 * with other work) it is the budget less what loaded models hold; otherwise the OS's available
 * RAM and the GPU's free VRAM, which already exclude what loaded models hold.
 */
export async function freeMemory(
  llama: Llama,
  budgetBytes: number | undefined,
  heldBytes: number,
): Promise<{ ramBytes: number; vramBytes: number; from: string }> {
  const vram = llama.gpu === false ? 0 : (await llama.getVramState()).free;
  if (budgetBytes !== undefined)
    return { ramBytes: Math.max(0, budgetBytes - heldBytes), vramBytes: vram, from: `of a ${mib(budgetBytes)} budget` };
  return { ramBytes: freemem(), vramBytes: vram, from: "available" };
}

/** The does-not-fit sentence: the model, what it needs, and what is free. */
export function tooLargeMessage(
  id: string,
  need: Footprint,
  free: { ramBytes: number; vramBytes: number; from: string },
  busy: number,
): string {
  const needs = `${mib(need.ramBytes)} RAM${need.vramBytes > 0 ? ` + ${mib(need.vramBytes)} VRAM` : ""}`;
  const has = `${mib(free.ramBytes)} RAM${free.vramBytes > 0 || need.vramBytes > 0 ? ` + ${mib(free.vramBytes)} VRAM` : ""}`;
  const others = busy > 0 ? `, with ${busy} other loaded model${busy === 1 ? "" : "s"} busy` : "";
  return `model ${id} does not fit in memory: it needs ${needs} (node-llama-cpp's estimate) but only ${has} is free ${free.from}${others}`;
}

export function mib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
