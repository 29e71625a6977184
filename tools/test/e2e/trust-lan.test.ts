import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MeshState } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLab,
  hubPorts,
  pollUntil,
  probeNats,
  startHub,
  waitForOutput,
  type Hub,
  type Lab,
  type LabHost,
} from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";

// Attack 10 from the LAN side, after the join: a hub that runs as a household should (its own
// machine on the mesh, NATS on its mesh address only), a joined machine "mac", and "mallory", a
// host on the same home LAN that never joined. mallory cannot open NATS on the hub's LAN address;
// routed at the hub's mesh address through the LAN, her packets are dropped (the join's mesh
// guard); over the mesh itself NATS still refuses whoever lacks the secret, which never crossed
// the LAN. The hub's own counters show that after mac's join no
// NATS or coordinator TCP arrives over the LAN, only WireGuard, so there is no roster answer left
// on the LAN to rewrite. A roster rewritten on the LAN during enrollment is refused by its
// signature: trust-identity.test.ts ("attack 10 in the lab") proves that part.

let lab: Lab;
let hub: Hub;
let mac: LabHost;
let mallory: LabHost;

beforeAll(async () => {
  lab = await createLab({ hosts: ["mac"], mesh: false, extraHosts: ["hub", "mallory"] });
  hub = await startHub(lab, "hub", { onMesh: true });
  mac = lab.host("mac");
  mallory = lab.host("mallory");
  const follower = await hub.join(mac);
  // Heartbeats reach the coordinator only through NATS: mac online means NATS works for it.
  await waitForOutput(follower, /NATS connected \(nats:\/\/\*\*\*@100\.64\./, "mac's NATS over the mesh", 180_000);
  await hub.waitOnline(["mac"], 120_000);
}, 900_000);

afterAll(async () => {
  await lab?.teardown();
}, 120_000);

const probeFrom = (host: LabHost, target: string) => probeNats(host, target, `${hub.prefix}.usage.mac`);

describe("attack 10 from the LAN, after the join", () => {
  it("saves the hub's mesh address at the join, and mac's agent reaches NATS there", () => {
    const state = MeshState.parse(JSON.parse(readFileSync(join(hub.dataDir(mac), "mesh", "state.json"), "utf8")));
    expect(hub.meshIp).toMatch(/^100\.64\./);
    expect(state.hubMeshIp).toBe(hub.meshIp);
    expect(state.coordinatorUrl).toBe(hub.coordinatorUrl);
  });

  it("lets mallory not even connect to NATS on the hub's LAN address", async () => {
    const lan = await probeFrom(mallory, hub.host.underlayIp);
    expect(lan.what).toBe("ECONNREFUSED");
  });

  it("drops mallory at the mesh address routed through the LAN; over the mesh NATS still wants the secret", async () => {
    // Linux accepts a packet for any of its addresses on any interface: mallory routes the hub's
    // mesh address via its LAN address. The join's guard (apps/mesh mesh-guard.ts) drops a packet
    // for the mesh address that did not come through potluck0, so she reaches nothing at all.
    const route = await mallory.exec(["ip", "route", "replace", `${hub.meshIp}/32`, "via", hub.host.underlayIp]);
    expect(route.code, route.stderr).toBe(0);
    const viaLan = await probeFrom(mallory, hub.meshIp ?? "");
    expect(viaLan, JSON.stringify(viaLan)).toEqual({ what: "timeout", seen: "" });
    const guard = await hub.host.exec(["nft", "list", "table", "inet", "potluck_guard"]);
    expect(guard.stdout).toMatch(
      new RegExp(
        `ip daddr ${hub.meshIp?.replaceAll(".", "\\.")} iifname != \\{ [^}]*"potluck0"[^}]* \\} counter packets [1-9]`,
      ),
    );
    // The same probe from mac over the mesh shows it would see an answer: refused too, for want of the secret.
    const fromMac = await probeFrom(mac, hub.meshIp ?? "");
    expect(fromMac.what).toBe("answered");
    expect(fromMac.seen).toMatch(/^INFO .*-ERR 'Authorization Violation'/s);
  });

  it("mac's sidecar, given the hub's LAN URLs as the walkthrough writes them, reaches both over the mesh", async () => {
    // The hub's NATS listens on its mesh address only: a sidecar that kept the LAN URL would wait for NATS forever.
    const lanNats = hub.natsUrl.replace(hub.meshIp ?? "", hub.host.underlayIp);
    expect(lanNats).not.toBe(hub.natsUrl);
    const sidecar = mac.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
      cwd: repoRoot,
      env: hub.env({
        POTLUCK_MACHINE: "mac",
        POTLUCK_DATA_DIR: hub.dataDir(mac),
        POTLUCK_COORDINATOR_URL: hub.coordinatorUrl,
        POTLUCK_NATS_URL: lanNats,
        POTLUCK_MODELS: "",
        POTLUCK_DISCOVER: "0",
        POTLUCK_OLLAMA_PORT: "0",
      }),
    });
    try {
      await waitForOutput(sidecar, /sidecar listening/, "mac's sidecar", 180_000);
      expect(sidecar.output()).toContain(`reaching the hub at its mesh address ${hub.meshIp}`);
      // Its roster came from the coordinator over the mesh: the household list names the hub's machine.
      const listed = await pollUntil(
        async () =>
          (await mac.exec(["curl", "-sf", "http://127.0.0.1:8321/v1/models"], { timeoutMs: 10_000 })).stdout.includes(
            '"machine":"hub"',
          ),
        { timeoutMs: 60_000, intervalMs: 1_000 },
      );
      expect(listed, sidecar.output()).toBe(true);
      expect(sidecar.output()).not.toMatch(/waiting for NATS/);
    } finally {
      await sidecar.stop();
    }
  }, 300_000);

  it("sees no NATS or coordinator TCP on the hub's LAN side after the join, only WireGuard", async () => {
    const lanDev = hub.host.underlayDev;
    const rules = `table inet pltrustlan {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname "${lanDev}" tcp dport ${hubPorts.nats} counter comment "lan-nats"
    iifname "${lanDev}" tcp dport ${hubPorts.coordinator} counter comment "lan-coordinator"
    iifname "${lanDev}" udp dport 51820 counter comment "lan-wireguard"
    iifname "potluck0" tcp dport ${hubPorts.nats} counter comment "mesh-nats"
    iifname "potluck0" tcp dport ${hubPorts.coordinator} counter comment "mesh-coordinator"
  }
}
`;
    const loaded = await hub.host.exec(["nft", "-f", "-"], { input: rules });
    expect(loaded.code, loaded.stderr).toBe(0);
    // Two roster polls (5 s) and heartbeats (5 s) at least, each way.
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    const listed = await hub.host.exec(["nft", "list", "table", "inet", "pltrustlan"]);
    const counters = Object.fromEntries(
      [...listed.stdout.matchAll(/packets (\d+) bytes \d+ comment "([a-z-]+)"/g)].map((m) => [m[2], Number(m[1])]),
    );
    expect(counters, listed.stdout).toMatchObject({ "lan-nats": 0, "lan-coordinator": 0 });
    expect(counters["lan-wireguard"], listed.stdout).toBeGreaterThan(0);
    expect(counters["mesh-nats"], listed.stdout).toBeGreaterThan(0);
    expect(counters["mesh-coordinator"], listed.stdout).toBeGreaterThan(0);
  }, 60_000);
});
