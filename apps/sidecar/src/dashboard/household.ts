import type { Capabilities } from "@potluck/protocol";
import { Hono } from "hono";
import type { HouseholdPeers } from "../routes/models-list.js";

export interface HouseholdDeps {
  /** This machine's capabilities, read on every request (models load and unload). */
  capabilities: () => Capabilities;
  /** The peers' answers, shared with GET /v1/models (one fan-out, one cache); absent: this machine only. */
  peers?: HouseholdPeers;
}

/** One machine as the household page shows it; its models come from GET /v1/models. */
export interface HouseholdMachine {
  machine: string;
  owner: string;
  relation: "local" | "own" | "peer";
  /** "unreachable": the machine did not answer; `error` says at which layer. */
  status: "ready" | "warming" | "unreachable";
  version?: string;
  hardware?: Capabilities["hardware"];
  error?: { layer: string; message: string };
}

export interface HouseholdView {
  machine: string;
  generatedAt: string;
  machines: HouseholdMachine[];
}

/**
 * GET /dashboard/household: the machines of the household with their state and hardware, which
 * the OpenAI-shaped model list has no place for. Read-only, loopback only like the page.
 */
export function householdRoutes(deps: HouseholdDeps) {
  return new Hono().get("/dashboard/household", async (c) => {
    const self = deps.capabilities();
    const local: HouseholdMachine = {
      machine: self.machine,
      owner: self.owner,
      relation: "local",
      status: self.status,
      version: self.version,
      hardware: self.hardware,
    };
    const peers = deps.peers === undefined ? [] : await deps.peers();
    const view: HouseholdView = {
      machine: self.machine,
      generatedAt: new Date().toISOString(),
      machines: [
        local,
        ...peers.map((p): HouseholdMachine => ({
          machine: p.machine,
          owner: p.owner,
          relation: p.relation,
          status: p.status === "ok" ? (p.about?.status ?? "ready") : "unreachable",
          ...(p.about === undefined ? {} : { version: p.about.version, hardware: p.about.hardware }),
          ...(p.error === undefined ? {} : { error: p.error }),
        })),
      ],
    };
    return c.json(view);
  });
}
