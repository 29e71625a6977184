import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DiagnosticsReport, redactNatsUrl, type Roster } from "@potluck/protocol";
import {
  createLab,
  type ExecResult,
  type Hub,
  hubPorts,
  type Lab,
  type LabHost,
  type LabProcess,
  startHub,
  startHubSidecar,
  waitForOutput,
} from "../lab/index.js";
import { repoRoot } from "../lib/repo.js";

/**
 * The household of field note 1 in the lab: "hub" on the home LAN runs nats-server and the
 * coordinator; mac (no model), linux (the tiny TEST model) and windows (a memory store) each
 * `potluck join` it and run the real sidecar against its roster.
 */
export const HouseholdPorts = { ...hubPorts, sidecar: 8321 } as const;
export const householdModel = "potluck-tiny-test-model-s1-v2";
const machineNames = ["mac", "linux", "windows"] as const;
export type MachineName = (typeof machineNames)[number];

export interface Household {
  lab: Lab;
  hub: Hub;
  host(name: MachineName): LabHost;
  /** `potluck ARGS` run inside `host`, pointed at that host's sidecar. */
  cli(host: LabHost, args: string[], timeoutMs?: number): Promise<ExecResult>;
  roster(): Promise<Roster>;
  /** `potluck doctor PEER --json` on mac. */
  doctor(peer: string): Promise<DiagnosticsReport>;
  /** The running sidecar of a machine (its output, to stop it). */
  sidecar(name: MachineName): LabProcess;
  /**
   * Stops a machine's sidecar and starts it again with `extra` on top of its household settings
   * (its data dir, and so its memory store and keys, are kept).
   */
  restartSidecar(name: MachineName, extra: NodeJS.ProcessEnv): Promise<void>;
  /** The fw-watcher in watch mode on `host`, started and listening. */
  startFwWatcher(host: LabHost, intervalS: number, env?: NodeJS.ProcessEnv): Promise<LabProcess>;
  teardown(): Promise<void>;
}

export async function createHousehold(log: (message: string) => void = () => undefined): Promise<Household> {
  const lab = await createLab({ hosts: [...machineNames], mesh: false, extraHosts: ["hub"] });
  try {
    return await setUp(lab, log);
  } catch (error) {
    await lab.teardown();
    throw error;
  }
}

/** What each machine runs with: mac and windows have no model, linux gets the generated TEST model. */
function machineEnv(host: LabHost): NodeJS.ProcessEnv {
  if (host.name === "linux") return {};
  const dir = join(host.runDir, "no-models");
  mkdirSync(dir, { recursive: true });
  return { POTLUCK_MODELS: dir };
}

async function setUp(lab: Lab, log: (message: string) => void): Promise<Household> {
  const sidecarPort = HouseholdPorts.sidecar;
  log(`hub ${lab.host("hub").underlayIp}: nats-server and the coordinator`);
  const hub = await startHub(lab);
  const env = (extra: NodeJS.ProcessEnv = {}) => hub.env({ POTLUCK_PORT: String(sidecarPort), ...extra });
  for (const name of machineNames) {
    log(`${name}: potluck join ${hub.coordinatorUrl} <token> --follow --nats ${redactNatsUrl(hub.natsUrl)}`);
    await hub.join(lab.host(name));
  }
  const sidecars = new Map<string, LabProcess>();
  const startSidecar = async (host: LabHost, extra: NodeJS.ProcessEnv) => {
    sidecars.set(host.name, await startHubSidecar(hub, host, { ...machineEnv(host), ...extra }));
  };
  log("starting the sidecars: mac (no model), linux (tiny TEST model), windows (memory store)");
  await Promise.all(machineNames.map((n) => startSidecar(lab.host(n), {})));

  const mac = lab.host("mac");
  const cli = (host: LabHost, args: string[], timeoutMs = 180_000) =>
    host.exec([process.execPath, join(repoRoot, "bin/potluck.mjs"), ...args], {
      cwd: repoRoot,
      env: env({ POTLUCK_MACHINE: host.name }),
      timeoutMs,
    });
  return {
    lab,
    hub,
    cli,
    host: (name) => lab.host(name),
    roster: () => hub.roster(),
    async doctor(peer) {
      const res = await cli(mac, ["doctor", peer, "--json"]);
      return DiagnosticsReport.parse(JSON.parse(res.stdout));
    },
    sidecar(name) {
      const proc = sidecars.get(name);
      if (proc === undefined) throw new Error(`no sidecar on ${name}`);
      return proc;
    },
    async restartSidecar(name, extra) {
      await sidecars.get(name)?.stop();
      await startSidecar(lab.host(name), extra);
    },
    async startFwWatcher(host, intervalS, extra = {}) {
      const watcher = host.spawn(
        "fw-watcher",
        [process.execPath, join(repoRoot, "bin/potluck-fw-watcher.mjs"), "--watch"],
        {
          cwd: repoRoot,
          env: env({ POTLUCK_FW_WATCH_INTERVAL: String(intervalS), POTLUCK_MACHINE: host.name, ...extra }),
        },
      );
      await waitForOutput(watcher, /fw-watcher listening/, `starting the fw-watcher on ${host.name}`, 60_000);
      return watcher;
    },
    teardown: () => lab.teardown(),
  };
}
