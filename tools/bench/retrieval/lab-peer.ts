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
  /**
   * Where the peer path's time goes: the same signed search from a client on linux's own
   * loopback, from mac over the bare underlay (no WireGuard) and over the mesh, and a bare HTTP
   * GET answered by a trivial node:http server each of those ways (the floor nothing of ours sits in).
   */
  breakdown(body: { query: string; project: string }, args: { samples: number; repeats: number }, answerBytes: number): Promise<Breakdown>;
  close(): Promise<void>;
}

export interface Breakdown {
  searchLoopback: Summary;
  searchUnderlay: Summary;
  searchMesh: Summary;
  floorLoopback: Summary;
  floorUnderlay: Summary;
  floorMesh: Summary;
  /** Bare GETs whose answer is as large as the search's, over the underlay and the mesh. */
  answerBytes: number;
  sizedFloorUnderlay: Summary;
  sizedFloorMesh: Summary;
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
    async breakdown(body, args, answerBytes) {
      await memoryLab.startFloor();
      const search = { method: "POST", path, body, signed: true };
      const floor = { method: "GET", path: "/", signed: false };
      const timing = { samples: args.samples, warmup: 20, repeats: args.repeats };
      const { urls } = memoryLab;
      const time = (from: "mac" | "linux", url: string, request: typeof search | typeof floor) =>
        (from === "mac" ? memoryLab.fromMac : memoryLab.fromLinux)({ mode: "time", url, request, ...timing }) as Promise<Summary>;
      return {
        searchLoopback: await time("linux", urls.loopbackSidecar, search),
        searchUnderlay: await time("mac", urls.underlaySidecar, search),
        searchMesh: await time("mac", urls.meshSidecar, search),
        floorLoopback: await time("linux", urls.loopbackFloor, floor),
        floorUnderlay: await time("mac", urls.underlayFloor, floor),
        floorMesh: await time("mac", urls.meshFloor, floor),
        answerBytes,
        sizedFloorUnderlay: await time("mac", urls.underlayFloor, { ...floor, path: `/?bytes=${answerBytes}` }),
        sizedFloorMesh: await time("mac", urls.meshFloor, { ...floor, path: `/?bytes=${answerBytes}` }),
      };
    },
    close: () => memoryLab.teardown(),
  };
  return peer;
}
