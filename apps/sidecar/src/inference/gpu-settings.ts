/**
 * POTLUCK_GPU's values, apart from gpu.ts so the config module does not load node-llama-cpp: auto
 * (node-llama-cpp picks among the prebuilt backends), off (CPU only), or one backend that must be there.
 */
export const GpuSettings = ["auto", "off", "cuda", "vulkan", "metal"] as const;
export type GpuSetting = (typeof GpuSettings)[number];
