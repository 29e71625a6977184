import type { Capabilities, InferStreamChunk, LayerCode, PeerInferRequest, ProbeModel } from "@potluck/protocol";
import type { GenerateRequest } from "../inference/engine.js";
import type { PeerRecord } from "../peer/directory.js";

/** One chat completion to run somewhere: the engine's request plus the model it names. */
export interface ChatJob extends GenerateRequest {
  model: string;
}

/** Where a job will run; `served_by` and the footer come from here and from the done chunk. */
export interface RouteChoice {
  machine: string;
  owner: string;
  kind: "local" | "own" | "peer";
  testModel: boolean;
}

export interface PlannedRoute {
  /** Who serves the reply: after a failover before the first token, the candidate that took over. */
  readonly choice: RouteChoice;
  run(job: ChatJob): AsyncGenerator<InferStreamChunk>;
}

/**
 * Why a candidate can or cannot serve, as data the router decides on; `text` is the sentence the
 * no-route error shows for it. A diagnosis or a failed call carries only text: its layer (on the
 * report) is what a caller acts on.
 */
export type CandidateReason =
  | { kind: "ready"; text: string }
  /** Usable, but its model is not loaded: the job waits for the load (ranked after every ready one). */
  | { kind: "available"; text: string }
  | { kind: "no_model"; text: string }
  /** Its model is loading; usable (the job joins the load), ranked after the ready ones. */
  | { kind: "loading"; text: string; progress: number }
  | { kind: "load_failed"; text: string }
  | { kind: "not_on_roster"; text: string }
  /** The router's own probe or call failed. */
  | { kind: "call_failed"; text: string }
  /** Diagnostics named the layer that stops it (replacing the router's own reason). */
  | { kind: "diagnosed"; text: string }
  /** It was tried and failed before its first token. */
  | { kind: "failed_before_first_token"; text: string }
  /** Usable, but the attempts per request ran out before it. */
  | { kind: "not_tried"; text: string };

/** How one candidate fared while routing; the no-route error lists every one of these. */
export interface CandidateReport {
  machine: string;
  relation: "local" | "own" | "peer";
  layer: LayerCode | "ok";
  reason: CandidateReason;
}

/** One place a job can run, as the router ranked it. */
export interface Candidate {
  choice: RouteChoice;
  /** The probe's line for this candidate (layer "ok"); replaced by the failure if its run fails. */
  report: CandidateReport;
  start(job: ChatJob): AsyncGenerator<InferStreamChunk>;
}

/** The calls routing makes to other sidecars: libs/peer's `PeerClient` (tests script their own). */
export interface RouterPeerClient {
  probe(peer: PeerRecord, options?: { model?: string }): Promise<{ latencyMs: number; model?: ProbeModel }>;
  capabilities(peer: PeerRecord): Promise<Capabilities>;
  infer(peer: PeerRecord, request: PeerInferRequest, signal?: AbortSignal): AsyncGenerator<InferStreamChunk>;
}
