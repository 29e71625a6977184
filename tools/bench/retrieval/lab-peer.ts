import { MemorySearchResponse } from "@potluck/protocol";
import { createMemoryLab, type MemoryLab } from "./lab-sidecar.js";
import type { Summary } from "./stats.js";

/** The bench's view of the lab: a real sidecar on "linux", queried (signed) from "mac" over the mesh. */
export interface LabPeer {
  description: string;
  load(texts: readonly string[], project: string): Promise<void>;
  /** Texts of the hits, best first (ids differ between machines' stores). */
  search(body: { query: string; project: string }): Promise<string[]>;
  searchMany(bodies: { query: string; project: string }[]): Promise<string[][]>;
  time(body: { query: string; project: string }, args: { samples: number; repeats: number }): Promise<Summary>;
  close(): Promise<void>;
}

export async function labPeerPath(): Promise<LabPeer> {
  if (process.getuid?.() !== 0) throw new Error("the lab needs root (network namespaces)");
  const memoryLab: MemoryLab = await createMemoryLab();
  const path = "/peer/memory/search";
  const peer: LabPeer = {
    description: "mac → linux over WireGuard, real sidecar",
    async load(texts, project) {
      await memoryLab.stop();
      await memoryLab.populate(texts, project);
      await memoryLab.start({ POTLUCK_PEER_MEMORY_ENABLED: "1" });
    },
    async search(body) {
      return (await peer.searchMany([body]))[0] ?? [];
    },
    async searchMany(bodies) {
      const answers = await memoryLab.requestsFromMac(bodies.map((body) => ({ method: "POST", path, body, signed: true })));
      return answers.map((a) => {
        if (a.status !== 200) throw new Error(`lab peer search answered ${a.status}: ${JSON.stringify(a.body).slice(0, 300)}`);
        return MemorySearchResponse.parse(a.body).hits.map((h) => h.record.text);
      });
    },
    async time(body, args) {
      return (await memoryLab.fromMac({ mode: "time", request: { method: "POST", path, body, signed: true }, samples: args.samples, warmup: 20, repeats: args.repeats })) as Summary;
    },
    close: () => memoryLab.teardown(),
  };
  return peer;
}
