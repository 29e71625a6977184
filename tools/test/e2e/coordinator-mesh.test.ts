import { join } from "node:path";
import { HeartbeatTiming, natsConnectOptions, type Roster } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLab,
  httpFrom,
  type Hub,
  type Lab,
  type LabHost,
  type LabProcess,
  pollUntil,
  serveHttp,
  startHub,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// Three machines `potluck join` a coordinator on the home LAN (the "hub" host, which also runs
// NATS); no potluck0 exists beforehand. Their meshes come up from the roster alone, HTTP works
// between every pair of mesh addresses, a removed machine disappears from the others' peers, and
// a machine whose heartbeats stop is offline only after the timeout.
const potluck = join(repoRoot, "bin/potluck.mjs");
const names = ["mac", "linux", "windows"];
const httpPort = 8321;
/** Everything here runs several node processes per host on a loaded 2-core machine. */
const meshUpMs = 180_000;

let lab: Lab;
let hub: Hub;
const followers = new Map<string, LabProcess>();
const roster = () => hub.roster();

async function wgPeers(host: LabHost): Promise<Map<string, number>> {
  const res = await host.exec(["wg", "show", "potluck0", "latest-handshakes"]);
  return new Map(
    res.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(/\s+/))
      .map(([k, v]) => [k ?? "", Number(v)]),
  );
}

beforeAll(async () => {
  lab = await createLab({ hosts: names, mesh: false, extraHosts: ["hub"] });
  hub = await startHub(lab);
}, 300_000);

afterAll(async () => {
  await lab?.teardown();
}, 120_000);

describe("potluck join across the lab", () => {
  it("brings up potluck0 on three hosts from the roster alone, with HTTP between every pair", async () => {
    for (const name of names) followers.set(name, await hub.join(lab.host(name)));
    const machines = (await roster()).machines;
    expect(machines.map((m) => m.name).sort()).toEqual([...names].sort());
    expect(new Set(machines.map((m) => m.meshIp)).size).toBe(3);
    // Every host ends up with the two others as peers, and handshakes with both.
    const meshed = await pollUntil(
      async () => {
        for (const name of names) {
          const peers = await wgPeers(lab.host(name));
          const others = machines.filter((m) => m.name !== name);
          if (!others.every((m) => (peers.get(m.wireguardPublicKey) ?? 0) > 0)) return false;
        }
        return true;
      },
      { timeoutMs: meshUpMs, intervalMs: 500 },
    );
    expect(meshed, [...followers.values()].map((f) => f.output().slice(-1500)).join("\n---\n")).toBe(true);
    for (const name of names) {
      const mtu = await lab.host(name).exec(["cat", "/sys/class/net/potluck0/mtu"]);
      expect(mtu.stdout.trim()).toBe("1280");
    }

    for (const name of names) await serveHttp(lab.host(name), httpPort);
    for (const from of names) {
      for (const to of machines.filter((m) => m.name !== from)) {
        const ok = await pollUntil(
          async () => (await httpFrom(lab.host(from), `http://${to.meshIp}:${httpPort}/`, { timeoutMs: 5_000 })).ok,
          { timeoutMs: 60_000, intervalMs: 500 },
        );
        expect(ok, `HTTP ${from} -> ${to.name} (${to.meshIp})`).toBe(true);
      }
    }
  }, 600_000);

  it("reports every machine online from its heartbeats, and potluck peers shows the roster from a host", async () => {
    const online = await pollUntil(
      async () => (await roster()).machines.every((m) => m.state === "online" && !m.staleKey),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(online, JSON.stringify((await roster()).machines.map((m) => [m.name, m.state, m.staleKey]))).toBe(true);
    const mac = lab.host("mac");
    const res = await mac.exec([process.execPath, potluck, "peers", "--data-dir", hub.dataDir(mac), "--json"], {
      env: hub.env(),
      timeoutMs: 120_000,
    });
    expect(res.code, res.stderr).toBe(0);
    const view = JSON.parse(res.stdout) as {
      self: string;
      machines: Array<{ name: string; self: boolean; handshakeAgeS: number | null }>;
    };
    expect(view.self).toBe("mac");
    expect(view.machines.find((m) => m.self)?.name).toBe("mac");
    expect(view.machines.filter((m) => !m.self).every((m) => m.handshakeAgeS !== null)).toBe(true);
  }, 300_000);

  it("keeps the hub's NATS to clients with the household's token (the heartbeats above came through it)", async () => {
    // Plain NATS protocol from another host over the LAN, so no client library can add anything.
    const { servers, token } = natsConnectOptions(hub.natsUrl);
    expect(token).toBeDefined();
    const address = new URL(servers);
    const hello = (connect: object) =>
      lab
        .host("mac")
        .exec(
          [
            "bash",
            "-c",
            `exec 3<>/dev/tcp/${address.hostname}/${address.port}; read -t 10 info <&3; printf '%s\\r\\nPING\\r\\n' "$1" >&3; read -t 10 reply <&3; echo "$reply"`,
            "hello",
            `CONNECT ${JSON.stringify({ verbose: false, ...connect })}`,
          ],
          { timeoutMs: 30_000 },
        );
    expect((await hello({})).stdout).toMatch(/Authorization Violation/);
    expect((await hello({ auth_token: "not-the-token" })).stdout).toMatch(/Authorization Violation/);
    expect((await hello({ auth_token: token })).stdout).toMatch(/PONG/);
  }, 120_000);

  it("drops a removed machine from the other hosts' potluck0", async () => {
    const windows = (await roster()).machines.find((m) => m.name === "windows");
    expect(windows).toBeDefined();
    expect(await hub.admin("DELETE", "/v1/machines/windows")).toBe(200);
    for (const name of ["mac", "linux"]) {
      const gone = await pollUntil(
        async () => !(await wgPeers(lab.host(name))).has(windows?.wireguardPublicKey ?? ""),
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      expect(gone, `windows still a peer on ${name}`).toBe(true);
    }
  }, 300_000);

  it("marks a host offline once its heartbeats stop, never before the timeout", async () => {
    await followers.get("linux")?.stop();
    let last: Roster["machines"][number] | undefined;
    const offline = await pollUntil(
      async () => {
        last = (await roster()).machines.find((m) => m.name === "linux");
        return last?.state === "offline";
      },
      { timeoutMs: HeartbeatTiming.offlineAfterMs + 90_000, intervalMs: 250 },
    );
    const seenOfflineAt = Date.now();
    expect(offline, JSON.stringify(last)).toBe(true);
    // Judged on the coordinator's receive time (same host clock here): silence had lasted at least the timeout.
    expect(seenOfflineAt - Date.parse(last?.lastHeartbeatAt ?? "")).toBeGreaterThanOrEqual(
      HeartbeatTiming.offlineAfterMs,
    );
    expect((await roster()).machines.find((m) => m.name === "mac")?.state).toBe("online");
  }, 300_000);
});
