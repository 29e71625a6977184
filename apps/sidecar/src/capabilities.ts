import { arch, cpus, platform, totalmem } from "node:os";
import type { Capabilities, EmbedderInfo } from "@potluck/protocol";
import type { InferenceEngine } from "./inference/engine.js";

export interface CapabilitiesDeps {
  machine: string;
  owner: string;
  version: string;
  engine: InferenceEngine;
  isWarm: () => boolean;
  /** The memory store's embedder, when memory is wired in. */
  embedder?: () => EmbedderInfo | null;
  memory?: () => { peerSearchEnabled: boolean; records: number };
}

/** What this machine can serve right now, for GET /peer/capabilities and the dashboard. */
export function capabilitiesOf(deps: CapabilitiesDeps): Capabilities {
  return {
    machine: deps.machine,
    owner: deps.owner,
    version: deps.version,
    status: deps.isWarm() ? "ready" : "warming",
    models: deps.engine.list(),
    embedder: deps.embedder?.() ?? null,
    memory: deps.memory?.() ?? { peerSearchEnabled: false, records: 0 },
    hardware: {
      platform: platform(),
      arch: arch(),
      cpus: Math.max(1, cpus().length),
      memoryBytes: totalmem(),
      // The backend in use and its device and VRAM ("cuda: NVIDIA …"); null when llama.cpp runs on CPU.
      // Each loaded model's runtime (models[].runtime) says how many of its layers are offloaded.
      gpu: deps.engine.gpu?.() ?? null,
    },
  };
}
