import { MemorySearchResponse } from "@potluck/protocol";
import { createMemoryLab, type MemoryLab } from "./lab-sidecar.js";
import { median, medianOf, type Summary } from "../common/stats.js";

/**
 * Requests sent, untimed, to a freshly (re)started lab sidecar on each path before timing it: the
 * bench's in-process server has served thousands by then, and a peer that has been up a while
 * runs optimized code, not the interpreter's (a profile of the first few hundred requests after
 * start showed baseline code and the optimizing compiler busy on the sidecar's threads).
 */
export const serverWarmupRequests = 300;

type Body = { query: string; project: string };

/**
 * The bench's view of the lab: a real sidecar on "linux", queried locally on its loopback and (signed) from "mac" over
 * the mesh.
 */
export interface LabPeer {
  description: string;
  load(texts: readonly string[], project: string): Promise<void>;
  /** Texts of the hits, best first (ids differ between machines' stores). */
  search(body: Body): Promise<string[]>;
  searchMany(bodies: Body[]): Promise<string[][]>;
  /** Local and peer search on the same lab sidecar, repeats alternated so load falls on both alike. */
  time(body: Body, args: { samples: number; repeats: number }): Promise<LabTiming>;
  /**
   * Where the peer path's time goes: the same signed search from a client on linux's own
   * loopback, from mac over the bare underlay (no WireGuard) and over the mesh, and a bare HTTP
   * GET answered by a trivial node:http server each of those ways (the floor nothing of ours
   * sits in), idle and busy for as long as the sidecar computes per search. Cells interleaved.
   */
  breakdown(
    body: Body,
    args: { samples: number; repeats: number },
    answerBytes: number,
    serverCpuMs: number,
  ): Promise<Breakdown>;
  close(): Promise<void>;
}

export interface LabTiming {
  /** POST /memory/search from a client process on linux's own loopback: local, as a CLI or agent there calls it. */
  local: Summary;
  /** Signed POST /peer/memory/search from mac over the WireGuard mesh, to the same sidecar. */
  peer: Summary;
  /** The sidecar main thread's CPU time per request (ms), while serving each. */
  localCpuMs: number;
  peerCpuMs: number;
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
  /**
   * The sized GET from a server that first computes for `busyMs` (the sidecar's CPU per peer search), on linux's
   * loopback and over the mesh.
   */
  busyMs: number;
  busyFloorLoopback: Summary;
  busyFloorMesh: Summary;
}

type Request = { method: string; path: string; body?: unknown; signed: boolean };

export async function labPeerPath(): Promise<LabPeer> {
  if (process.getuid?.() !== 0) throw new Error("the lab needs root (network namespaces)");
  const memoryLab: MemoryLab = await createMemoryLab();
  const path = "/peer/memory/search";
  const { urls } = memoryLab;
  const peerRequest = (body: Body): Request => ({ method: "POST", path, body, signed: true });
  const localRequest = (body: Body): Request => ({ method: "POST", path: "/memory/search", body, signed: false });
  /** One timed client process (a separate process, as every real caller is); its CPU cost to the sidecar too. */
  const timeOnce = async (from: "mac" | "linux", url: string, request: Request, samples: number, warmup = 20) => {
    const cpuBefore = await memoryLab.sidecarCpuMs();
    const summary = (await (from === "mac" ? memoryLab.fromMac : memoryLab.fromLinux)({
      mode: "time",
      url,
      request,
      samples,
      warmup,
      repeats: 1,
    })) as Summary;
    return { summary, cpuMsPerRequest: ((await memoryLab.sidecarCpuMs()) - cpuBefore) / (samples + warmup) };
  };
  let warmedFor: string | undefined;
  const warmUp = async (body: Body) => {
    const key = JSON.stringify(body);
    if (warmedFor === key) return;
    await timeOnce("linux", urls.loopbackSidecar, localRequest(body), 10, serverWarmupRequests);
    await timeOnce("mac", urls.meshSidecar, peerRequest(body), 10, serverWarmupRequests);
    warmedFor = key;
  };
  const peer: LabPeer = {
    description: "mac → linux over WireGuard, real sidecar",
    async load(texts, project) {
      await memoryLab.stop();
      warmedFor = undefined;
      await memoryLab.populate(texts, project);
      await memoryLab.start({ POTLUCK_PEER_MEMORY_ENABLED: "1" });
    },
    async search(body) {
      return (await peer.searchMany([body]))[0] ?? [];
    },
    async searchMany(bodies) {
      const answers = await memoryLab.requestsFromMac(bodies.map((body) => peerRequest(body)));
      return answers.map((a) => {
        if (a.status !== 200)
          throw new Error(`lab peer search answered ${a.status}: ${JSON.stringify(a.body).slice(0, 300)}`);
        return MemorySearchResponse.parse(a.body).hits.map((h) => h.record.text);
      });
    },
    async time(body, args) {
      await warmUp(body);
      const local: Summary[] = [];
      const peerRuns: Summary[] = [];
      const localCpu: number[] = [];
      const peerCpu: number[] = [];
      for (let r = 0; r < args.repeats; r++) {
        const l = await timeOnce("linux", urls.loopbackSidecar, localRequest(body), args.samples);
        const p = await timeOnce("mac", urls.meshSidecar, peerRequest(body), args.samples);
        local.push(l.summary);
        localCpu.push(l.cpuMsPerRequest);
        peerRuns.push(p.summary);
        peerCpu.push(p.cpuMsPerRequest);
      }
      return {
        local: medianOf(local),
        peer: medianOf(peerRuns),
        localCpuMs: median(localCpu),
        peerCpuMs: median(peerCpu),
      };
    },
    async breakdown(body, args, answerBytes, serverCpuMs) {
      await warmUp(body);
      await memoryLab.startFloor();
      const search = peerRequest(body);
      const floor: Request = { method: "GET", path: "/", signed: false };
      const sized: Request = { ...floor, path: `/?bytes=${answerBytes}` };
      const busyUs = Math.round(serverCpuMs * 1000);
      const busy: Request = { ...floor, path: `/?bytes=${answerBytes}&busyUs=${busyUs}` };
      const cells = {
        searchLoopback: ["linux", urls.loopbackSidecar, search],
        searchUnderlay: ["mac", urls.underlaySidecar, search],
        searchMesh: ["mac", urls.meshSidecar, search],
        floorLoopback: ["linux", urls.loopbackFloor, floor],
        floorUnderlay: ["mac", urls.underlayFloor, floor],
        floorMesh: ["mac", urls.meshFloor, floor],
        sizedFloorUnderlay: ["mac", urls.underlayFloor, sized],
        sizedFloorMesh: ["mac", urls.meshFloor, sized],
        busyFloorLoopback: ["linux", urls.loopbackFloor, busy],
        busyFloorMesh: ["mac", urls.meshFloor, busy],
      } satisfies Record<string, ["mac" | "linux", string, Request]>;
      const runs = new Map<keyof typeof cells, Summary[]>();
      for (let r = 0; r < args.repeats; r++) {
        for (const [name, [from, url, request]] of Object.entries(cells) as [
          keyof typeof cells,
          ["mac" | "linux", string, Request],
        ][]) {
          runs.set(name, [...(runs.get(name) ?? []), (await timeOnce(from, url, request, args.samples)).summary]);
        }
      }
      const cell = (name: keyof typeof cells) => medianOf(runs.get(name) ?? []);
      return {
        searchLoopback: cell("searchLoopback"),
        searchUnderlay: cell("searchUnderlay"),
        searchMesh: cell("searchMesh"),
        floorLoopback: cell("floorLoopback"),
        floorUnderlay: cell("floorUnderlay"),
        floorMesh: cell("floorMesh"),
        answerBytes,
        sizedFloorUnderlay: cell("sizedFloorUnderlay"),
        sizedFloorMesh: cell("sizedFloorMesh"),
        busyMs: busyUs / 1000,
        busyFloorLoopback: cell("busyFloorLoopback"),
        busyFloorMesh: cell("busyFloorMesh"),
      };
    },
    close: () => memoryLab.teardown(),
  };
  return peer;
}
