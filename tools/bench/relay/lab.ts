import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DiagnosticsReport } from "@potluck/protocol";
import {
  createLab,
  type ExecResult,
  type Hub,
  type Lab,
  type LabHost,
  type LabProcess,
  pollUntil,
  startHub,
  startHubSidecar,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

/**
 * The relay household in the lab, shared by tools/test/e2e/mesh-relay.test.ts and this bench:
 * "hub" runs nats-server and the coordinator (POTLUCK_HUB_MACHINE=hub) and joins its own mesh, so
 * it forwards between roster machines; "alpha" (no model) and "beta" (the tiny TEST model) are
 * Linux machines that `potluck join --follow` it (the mesh agent's loop, direct-then-hub) and run
 * the real sidecar. `blockDirect` drops UDP between alpha and beta with nftables on beta, as a
 * network that blocks traffic between hosts would; the hub stays reachable from both.
 */
export const relayModel = "potluck-tiny-test-model-s1-v2";
export const sidecarPort = 8321;
const dev = "potluck0";
/** The nftables table the block lives in on beta: its own, so lifting it touches nothing else. */
const blockTable = "pl_relay_block";

export type PathMode = "direct" | "hub";

export interface RelayLab {
  lab: Lab;
  hub: Hub;
  alpha: LabHost;
  beta: LabHost;
  /** `potluck ARGS` inside `host`, against its sidecar. */
  cli(host: LabHost, args: string[], timeoutMs?: number): Promise<ExecResult>;
  /** `potluck doctor PEER --json` on `from`. */
  doctor(from: LabHost, peer: string): Promise<DiagnosticsReport>;
  /** Drops UDP between alpha and beta (both ways, on beta); resolves to the undo. */
  blockDirect(): Promise<() => Promise<void>>;
  /** Which WireGuard peer on `from` carries `to`'s mesh address now: its own (direct) or the hub's. */
  pathOf(from: LabHost, to: LabHost): Promise<PathMode | null>;
  /** Polls `pathOf` until it is `mode` on both alpha and beta; returns the ms it took, or null past `timeoutMs`. */
  waitPath(mode: PathMode, timeoutMs: number): Promise<number | null>;
  /** The mesh agent's log on a host (`potluck join --follow`). */
  agentOutput(host: LabHost): string;
  teardown(): Promise<void>;
}

/** The household's sidecar on a joined lab host (tools/src/lab/hub-sidecar.ts). */
export const startSidecar = startHubSidecar;

export async function createRelayLab(log: (m: string) => void = () => undefined): Promise<RelayLab> {
  const lab = await createLab({ hosts: ["alpha", "beta"], mesh: false, extraHosts: ["hub", "stranger"] });
  try {
    return await setUp(lab, log);
  } catch (error) {
    await lab.teardown();
    throw error;
  }
}

async function setUp(lab: Lab, log: (m: string) => void): Promise<RelayLab> {
  log("hub: nats-server, the coordinator, and its own potluck0");
  const hub = await startHub(lab, "hub", { coordinatorEnv: { POTLUCK_HUB_MACHINE: "hub" } });
  const agents = new Map<string, LabProcess>();
  agents.set("hub", await hub.join(hub.host, "hub"));
  const alpha = lab.host("alpha");
  const beta = lab.host("beta");
  for (const host of [alpha, beta]) {
    log(`${host.name}: potluck join --follow`);
    agents.set(host.name, await hub.join(host));
  }
  const env = (extra: NodeJS.ProcessEnv = {}) => hub.env({ POTLUCK_PORT: String(sidecarPort), ...extra });
  const noModels = join(alpha.runDir, "no-models");
  mkdirSync(noModels, { recursive: true });
  log("sidecars: alpha (no model), beta (tiny TEST model)");
  await Promise.all([startSidecar(hub, alpha, { POTLUCK_MODELS: noModels }), startSidecar(hub, beta, {})]);

  const cli = (host: LabHost, args: string[], timeoutMs = 180_000) =>
    host.exec([process.execPath, join(repoRoot, "bin/potluck.mjs"), ...args], {
      cwd: repoRoot,
      env: env({ POTLUCK_MACHINE: host.name }),
      timeoutMs,
    });
  const meshIp = async (host: LabHost) => {
    const entry = (await hub.roster()).machines.find((m) => m.name === host.name);
    if (entry === undefined) throw new Error(`${host.name} is not on the roster`);
    return entry.meshIp;
  };
  const keys = new Map((await hub.roster()).machines.map((m) => [m.wireguardPublicKey as string, m.name]));
  const pathOf = async (from: LabHost, to: LabHost): Promise<PathMode | null> => {
    const ip = `${await meshIp(to)}/32`;
    const shown = await from.exec(["wg", "show", dev, "allowed-ips"]);
    for (const line of shown.stdout.split("\n")) {
      const [key = "", ...ips] = line.split(/\s+/);
      if (!ips.includes(ip)) continue;
      const carrier = keys.get(key);
      return carrier === to.name ? "direct" : carrier === "hub" ? "hub" : null;
    }
    return null;
  };
  return {
    lab,
    hub,
    alpha,
    beta,
    cli,
    async doctor(from, peer) {
      const res = await cli(from, ["doctor", peer, "--json"]);
      return DiagnosticsReport.parse(JSON.parse(res.stdout));
    },
    async blockDirect() {
      const other = alpha.underlayIp;
      const rules = `table inet ${blockTable} {
  chain input { type filter hook input priority -10; policy accept;
    ip saddr ${other} meta l4proto udp drop
  }
  chain output { type filter hook output priority -10; policy accept;
    ip daddr ${other} meta l4proto udp drop
  }
}
`;
      const nft = (script: string) => beta.exec(["nft", "-f", "-"], { input: script });
      const drop = `add table inet ${blockTable}\ndelete table inet ${blockTable}\n`;
      const put = await nft(`${drop}${rules}`);
      if (put.code !== 0) throw new Error(`blocking UDP between alpha and beta: ${put.stderr}`);
      return async () => {
        const lifted = await nft(drop);
        if (lifted.code !== 0) throw new Error(`lifting the block: ${lifted.stderr}`);
      };
    },
    pathOf,
    async waitPath(mode, timeoutMs) {
      const started = Date.now();
      const reached = await pollUntil(
        async () => (await pathOf(alpha, beta)) === mode && (await pathOf(beta, alpha)) === mode,
        { timeoutMs, intervalMs: 250 },
      );
      return reached ? Date.now() - started : null;
    },
    agentOutput: (host) => agents.get(host.name)?.output() ?? "",
    teardown: () => lab.teardown(),
  };
}
