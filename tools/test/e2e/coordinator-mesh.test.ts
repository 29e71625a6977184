import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { HeartbeatTiming, Roster } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, httpFrom, serveHttp, type Lab, type LabHost, type LabProcess } from "../../src/lab/index.js";
import { pollUntil } from "../../src/lab/run.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";

// Three machines `potluck join` a coordinator on the home LAN (the "hub" host, which also runs
// NATS); no potluck0 exists beforehand. Their meshes come up from the roster alone, HTTP works
// between every pair of mesh addresses, a removed machine disappears from the others' peers, and
// a machine whose heartbeats stop is offline only after the timeout.
const potluck = join(repoRoot, "bin/potluck.mjs");
const names = ["mac", "linux", "windows"];
const coordinatorPort = 8320;
const natsPort = 4222;
const httpPort = 8321;
const prefix = `t${randomBytes(4).toString("hex")}`;
/** Everything here runs several node processes per host on a loaded 2-core machine. */
const meshUpMs = 180_000;

let lab: Lab;
let hub: LabHost;
let coordinatorUrl: string;
const followers = new Map<string, LabProcess>();
const hubDir = () => join(hub.runDir, "potluck");
const dataDir = (host: LabHost) => join(host.runDir, "potluck");
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, POTLUCK_NATS_PREFIX: prefix };
  delete env.DATABASE_URL; // the hub's coordinator runs on embedded PGlite in its data dir
  delete env.POTLUCK_COORDINATOR_ADMIN_SECRET;
  return env;
};

async function roster(): Promise<Roster> {
  const res = await hub.exec(["sh", "-c", `exec ${process.execPath} -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.stdout.write(t))' "$0"`, `http://127.0.0.1:${coordinatorPort}/v1/roster`]);
  return Roster.parse(JSON.parse(res.stdout));
}

async function waitForOutput(proc: LabProcess, pattern: RegExp, what: string): Promise<void> {
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const ok = await pollUntil(() => exited || pattern.test(proc.output()), { timeoutMs: meshUpMs, intervalMs: 200 });
  if (!ok || exited) throw new Error(`${what}: ${proc.output().slice(-2000)}`);
}

async function wgPeers(host: LabHost): Promise<Map<string, number>> {
  const res = await host.exec(["wg", "show", "potluck0", "latest-handshakes"]);
  return new Map(res.stdout.split("\n").filter(Boolean).map((l) => l.split(/\s+/)).map(([k, v]) => [k ?? "", Number(v)]));
}

beforeAll(async () => {
  lab = await createLab({ hosts: names, mesh: false, extraHosts: ["hub"] });
  hub = lab.host("hub");
  coordinatorUrl = `http://${hub.underlayIp}:${coordinatorPort}`;
  const nats = hub.spawn("nats", ["/usr/sbin/nats-server", "-js", "-sd", join(hub.runDir, "nats"), "-a", "0.0.0.0", "-p", String(natsPort)]);
  await waitForOutput(nats, /Server is ready/, "starting nats-server in hub");
  const coordinator = hub.spawn("coordinator", [process.execPath, "--import", "tsx", serviceEntry.coordinator], {
    env: { ...cleanEnv(), POTLUCK_DATA_DIR: hubDir(), POTLUCK_NATS_URL: `nats://127.0.0.1:${natsPort}`, POTLUCK_COORDINATOR_PORT: String(coordinatorPort) },
  });
  await waitForOutput(coordinator, /coordinator listening/, "starting the coordinator in hub");
}, 300_000);

afterAll(async () => {
  await lab?.teardown();
}, 120_000);

describe("potluck join across the lab", () => {
  it("brings up potluck0 on three hosts from the roster alone, with HTTP between every pair", async () => {
    for (const name of names) {
      const created = await hub.exec([process.execPath, potluck, "token", "create", "--data-dir", hubDir(), "--coordinator", `http://127.0.0.1:${coordinatorPort}`], { env: cleanEnv(), timeoutMs: 120_000 });
      expect(created.code, created.stderr).toBe(0);
      const token = created.stdout.trim();
      const host = lab.host(name);
      const follower = host.spawn("join", [process.execPath, potluck, "join", coordinatorUrl, token, "--name", name, "--data-dir", dataDir(host), "--follow", "--nats", `nats://${hub.underlayIp}:${natsPort}`], { env: cleanEnv() });
      followers.set(name, follower);
      await waitForOutput(follower, /joined as/, `potluck join on ${name}`);
    }
    const machines = (await roster()).machines;
    expect(machines.map((m) => m.name).sort()).toEqual([...names].sort());
    expect(new Set(machines.map((m) => m.meshIp)).size).toBe(3);
    // Every host ends up with the two others as peers, and handshakes with both.
    const meshed = await pollUntil(async () => {
      for (const name of names) {
        const peers = await wgPeers(lab.host(name));
        const others = machines.filter((m) => m.name !== name);
        if (!others.every((m) => (peers.get(m.wireguardPublicKey) ?? 0) > 0)) return false;
      }
      return true;
    }, { timeoutMs: meshUpMs, intervalMs: 500 });
    expect(meshed, [...followers.values()].map((f) => f.output().slice(-1500)).join("\n---\n")).toBe(true);
    for (const name of names) {
      const mtu = await lab.host(name).exec(["cat", "/sys/class/net/potluck0/mtu"]);
      expect(mtu.stdout.trim()).toBe("1280");
    }

    for (const name of names) await serveHttp(lab.host(name), httpPort);
    for (const from of names) {
      for (const to of machines.filter((m) => m.name !== from)) {
        const ok = await pollUntil(async () => (await httpFrom(lab.host(from), `http://${to.meshIp}:${httpPort}/`, { timeoutMs: 5_000 })).ok, { timeoutMs: 60_000, intervalMs: 500 });
        expect(ok, `HTTP ${from} -> ${to.name} (${to.meshIp})`).toBe(true);
      }
    }
  }, 600_000);

  it("reports every machine online from its heartbeats, and potluck peers shows the roster from a host", async () => {
    const online = await pollUntil(async () => (await roster()).machines.every((m) => m.state === "online" && !m.staleKey), { timeoutMs: 60_000, intervalMs: 500 });
    expect(online, JSON.stringify((await roster()).machines.map((m) => [m.name, m.state, m.staleKey]))).toBe(true);
    const mac = lab.host("mac");
    const res = await mac.exec([process.execPath, potluck, "peers", "--data-dir", dataDir(mac), "--json"], { env: cleanEnv(), timeoutMs: 120_000 });
    expect(res.code, res.stderr).toBe(0);
    const view = JSON.parse(res.stdout) as { self: string; machines: Array<{ name: string; self: boolean; handshakeAgeS: number | null }> };
    expect(view.self).toBe("mac");
    expect(view.machines.find((m) => m.self)?.name).toBe("mac");
    expect(view.machines.filter((m) => !m.self).every((m) => m.handshakeAgeS !== null)).toBe(true);
  }, 300_000);

  it("drops a removed machine from the other hosts' potluck0", async () => {
    const windows = (await roster()).machines.find((m) => m.name === "windows");
    expect(windows).toBeDefined();
    const secret = (await hub.exec(["cat", join(hubDir(), "coordinator", "admin-secret")])).stdout.trim();
    const del = await hub.exec(["sh", "-c", `exec ${process.execPath} -e 'fetch(process.argv[1],{method:"DELETE",headers:{authorization:"Bearer "+process.argv[2]}}).then(r=>process.stdout.write(String(r.status)))' "$0" "$1"`, `http://127.0.0.1:${coordinatorPort}/v1/machines/windows`, secret]);
    expect(del.stdout).toBe("200");
    for (const name of ["mac", "linux"]) {
      const gone = await pollUntil(async () => !(await wgPeers(lab.host(name))).has(windows?.wireguardPublicKey ?? ""), { timeoutMs: 60_000, intervalMs: 500 });
      expect(gone, `windows still a peer on ${name}`).toBe(true);
    }
  }, 300_000);

  it("marks a host offline once its heartbeats stop, never before the timeout", async () => {
    await followers.get("linux")?.stop();
    let last: Roster["machines"][number] | undefined;
    const offline = await pollUntil(async () => {
      last = (await roster()).machines.find((m) => m.name === "linux");
      return last?.state === "offline";
    }, { timeoutMs: HeartbeatTiming.offlineAfterMs + 90_000, intervalMs: 250 });
    const seenOfflineAt = Date.now();
    expect(offline, JSON.stringify(last)).toBe(true);
    // Judged on the coordinator's receive time (same host clock here): silence had lasted at least the timeout.
    expect(seenOfflineAt - Date.parse(last?.lastHeartbeatAt ?? "")).toBeGreaterThanOrEqual(HeartbeatTiming.offlineAfterMs);
    expect((await roster()).machines.find((m) => m.name === "mac")?.state).toBe("online");
  }, 300_000);
});
