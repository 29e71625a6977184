import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DiagnosticsReport, Roster } from "@potluck/protocol";
import { createLab, type ExecResult, type Lab, type LabHost, type LabProcess } from "../lab/index.js";
import { pollUntil } from "../lab/run.js";
import { repoRoot, serviceEntry } from "../lib/repo.js";

/**
 * The household of field note 1 in the lab: "hub" on the home LAN runs nats-server and the
 * coordinator; mac (no model), linux (the tiny TEST model) and windows (a memory store) each
 * `potluck join` it and run the real sidecar against its roster.
 */
export const HouseholdPorts = { coordinator: 8320, nats: 4222, sidecar: 8321 } as const;
export const householdModel = "potluck-tiny-test-model-s1-v2";
const machineNames = ["mac", "linux", "windows"] as const;
/** Several node processes per host on a loaded 2-core machine. */
const upMs = 240_000;

export interface Household {
  lab: Lab;
  hub: LabHost;
  coordinatorUrl: string;
  host(name: (typeof machineNames)[number]): LabHost;
  /** `potluck ARGS` run inside `host`, pointed at that host's sidecar. */
  cli(host: LabHost, args: string[], timeoutMs?: number): Promise<ExecResult>;
  roster(): Promise<Roster>;
  /** `potluck doctor PEER --json` on mac. */
  doctor(peer: string): Promise<DiagnosticsReport>;
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

export async function waitForOutput(proc: LabProcess, pattern: RegExp, what: string, timeoutMs = upMs): Promise<void> {
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const ok = await pollUntil(() => exited || pattern.test(proc.output()), { timeoutMs, intervalMs: 200 });
  if (!ok || exited) throw new Error(`${what}: ${proc.output().slice(-2000)}`);
}

async function setUp(lab: Lab, log: (message: string) => void): Promise<Household> {
  const hub = lab.host("hub");
  const { coordinator: coordinatorPort, nats: natsPort, sidecar: sidecarPort } = HouseholdPorts;
  const coordinatorUrl = `http://${hub.underlayIp}:${coordinatorPort}`;
  const natsUrl = `nats://${hub.underlayIp}:${natsPort}`;
  const prefix = `t${randomBytes(4).toString("hex")}`;
  const dataDir = (host: LabHost) => join(host.runDir, "potluck");
  const env = (): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, POTLUCK_NATS_PREFIX: prefix, POTLUCK_PORT: String(sidecarPort) };
    delete e.DATABASE_URL; // the hub's coordinator runs on embedded PGlite in its data dir
    delete e.POTLUCK_COORDINATOR_ADMIN_SECRET;
    return e;
  };
  const potluck = join(repoRoot, "bin/potluck.mjs");
  log(`hub ${hub.underlayIp}: nats-server and the coordinator`);
  const nats = hub.spawn("nats", ["/usr/sbin/nats-server", "-js", "-sd", join(hub.runDir, "nats"), "-a", "0.0.0.0", "-p", String(natsPort)]);
  await waitForOutput(nats, /Server is ready/, "starting nats-server in hub");
  const coordinator = hub.spawn("coordinator", [process.execPath, "--import", "tsx", serviceEntry.coordinator], {
    env: { ...env(), POTLUCK_DATA_DIR: join(hub.runDir, "potluck"), POTLUCK_NATS_URL: `nats://127.0.0.1:${natsPort}`, POTLUCK_COORDINATOR_PORT: String(coordinatorPort) },
  });
  await waitForOutput(coordinator, /coordinator listening/, "starting the coordinator in hub");
  for (const name of machineNames) {
    const created = await hub.exec([process.execPath, potluck, "token", "create", "--data-dir", join(hub.runDir, "potluck"), "--coordinator", `http://127.0.0.1:${coordinatorPort}`], { env: env(), timeoutMs: 120_000 });
    if (created.code !== 0) throw new Error(`potluck token create: ${created.stderr}`);
    const host = lab.host(name);
    log(`${name}: potluck join ${coordinatorUrl} <token> --follow --nats ${natsUrl}`);
    const follower = host.spawn("join", [process.execPath, potluck, "join", coordinatorUrl, created.stdout.trim(), "--name", name, "--data-dir", dataDir(host), "--follow", "--nats", natsUrl], { env: env() });
    await waitForOutput(follower, /joined as/, `potluck join on ${name}`);
  }
  const startSidecar = async (host: LabHost, extra: NodeJS.ProcessEnv) => {
    const proc = host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
      cwd: repoRoot,
      env: {
        ...env(), POTLUCK_MACHINE: host.name, POTLUCK_OWNER: "home", POTLUCK_DATA_DIR: dataDir(host), POTLUCK_COORDINATOR_URL: coordinatorUrl,
        POTLUCK_NATS_URL: natsUrl, POTLUCK_BIND: "0.0.0.0", POTLUCK_THREADS: "1", POTLUCK_CONTEXT_SIZE: "4096", POTLUCK_PEER_MEMORY_ENABLED: "0", ...extra,
      },
    });
    const ready = await pollUntil(async () => (await host.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/health`], { timeoutMs: 5_000 })).stdout.includes('"ok"'), { timeoutMs: upMs, intervalMs: 500 });
    if (!ready) throw new Error(`sidecar on ${host.name} not ready within ${upMs / 1000} s: ${proc.output().slice(-2000)}`);
  };
  const noModels = (host: LabHost) => {
    const dir = join(host.runDir, "no-models");
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  log("starting the sidecars: mac (no model), linux (tiny TEST model), windows (memory store)");
  const [mac, linux, windows] = machineNames.map((n) => lab.host(n)) as [LabHost, LabHost, LabHost];
  await Promise.all([startSidecar(mac, { POTLUCK_MODELS: noModels(mac) }), startSidecar(linux, {}), startSidecar(windows, { POTLUCK_MODELS: noModels(windows) })]);

  const cli = (host: LabHost, args: string[], timeoutMs = 180_000) => host.exec([process.execPath, potluck, ...args], { cwd: repoRoot, env: { ...env(), POTLUCK_MACHINE: host.name }, timeoutMs });
  return {
    lab, hub, coordinatorUrl,
    host: (name) => lab.host(name),
    cli,
    async roster() {
      const res = await hub.exec(["curl", "-sf", `http://127.0.0.1:${coordinatorPort}/v1/roster`], { timeoutMs: 30_000 });
      return Roster.parse(JSON.parse(res.stdout));
    },
    async doctor(peer) {
      const res = await cli(mac, ["doctor", peer, "--json"]);
      return DiagnosticsReport.parse(JSON.parse(res.stdout));
    },
    async startFwWatcher(host, intervalS, extra = {}) {
      const watcher = host.spawn("fw-watcher", [process.execPath, join(repoRoot, "bin/potluck-fw-watcher.mjs"), "--watch"], {
        cwd: repoRoot, env: { ...env(), POTLUCK_FW_WATCH_INTERVAL: String(intervalS), POTLUCK_MACHINE: host.name, ...extra },
      });
      await waitForOutput(watcher, /fw-watcher listening/, `starting the fw-watcher on ${host.name}`, 60_000);
      return watcher;
    },
    teardown: () => lab.teardown(),
  };
}
