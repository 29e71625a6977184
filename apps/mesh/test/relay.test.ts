import type { MeshState, Roster } from "@potluck/protocol";
import { fakeKey, rosterEntry } from "./roster-fixture.js";
import { describe, expect, it } from "vitest";
import {
  chooseBackend,
  directRetryMs,
  directSilentMs,
  firstHandshakeWaitMs,
  parseWgDump,
  RelayTracker,
  type Plan,
  type Probe,
} from "../src/index.js";

// Direct first, the hub when the direct path is silent, direct again at the next direct
// handshake: the Linux backend's plan against a simulated potluck0 (a `wg` that keeps its peers
// in memory and applies the plan's `wg set`s) and an injected clock. The real path (nftables
// blocking UDP between two lab machines) is tools/test/e2e/mesh-relay.test.ts.
const key = fakeKey;
const entry = rosterEntry;
const hub = entry("hub", 1, ["192.168.1.10:51820"]);
const linux = entry("linux", 2, ["192.168.1.20:51820"]);
const box = entry("box", 3, ["192.168.1.30:51820"]);
const phone = entry("phone", 4, []);
const roster: Roster = { version: 1, machines: [hub, linux, box, phone], hub: "hub" };
const state: MeshState = {
  coordinatorUrl: "http://192.168.1.10:8320",
  machineId: linux.id,
  name: linux.name,
  owner: "home",
  meshIp: linux.meshIp,
  prefixLength: 10,
  mtu: 1280,
  interfaceName: "potluck0",
  listenPort: 51820,
  endpoints: linux.endpoints,
};

interface SimPeer {
  endpoint: string | null;
  allowed: string[];
  handshakeS: number;
  rx: number;
}

/**
 * potluck0 as `wg` shows and changes it: peers in memory, `wg set` applied with WireGuard's rule
 * that an allowed IP belongs to one peer only (setting it on one takes it from another).
 */
class SimWg {
  readonly peers = new Map<string, SimPeer>();
  readonly ran: string[][] = [];

  probe(): Probe {
    return {
      run: async (argv) => {
        if (argv.join(" ") === "wg show potluck0 dump") return { code: 0, stdout: this.dump(), stderr: "" };
        if (argv[0] === "ip") return { code: 0, stdout: " 100.64.0.2/10 ", stderr: "" };
        return { code: 1, stdout: "", stderr: "absent" };
      },
      exists: () => false,
      readFile: () => null,
    };
  }

  dump(): string {
    const lines = [`priv\t${linux.wireguardPublicKey}\t51820\toff`];
    for (const [k, p] of this.peers)
      lines.push(
        `${k}\t(none)\t${p.endpoint ?? "(none)"}\t${p.allowed.join(",") || "(none)"}\t${p.handshakeS}\t${p.rx}\t0\t25`,
      );
    return lines.join("\n");
  }

  apply(plan: Plan): void {
    for (const step of plan.steps) {
      if (step.kind !== "run" || step.argv[0] !== "wg" || step.argv[1] !== "set" || step.argv[3] !== "peer") continue;
      this.ran.push(step.argv);
      const k = step.argv[4] ?? "";
      const rest = step.argv.slice(5);
      if (rest[0] === "remove") {
        this.peers.delete(k);
        continue;
      }
      const peer = this.peers.get(k) ?? { endpoint: null, allowed: [], handshakeS: 0, rx: 0 };
      for (let i = 0; i < rest.length; i += 2) {
        const value = rest[i + 1] ?? "";
        if (rest[i] === "endpoint") peer.endpoint = value;
        if (rest[i] === "allowed-ips") {
          peer.allowed = value === "" ? [] : value.split(",");
          for (const [other, p] of this.peers)
            if (other !== k) p.allowed = p.allowed.filter((ip) => !peer.allowed.includes(ip));
        }
      }
      this.peers.set(k, peer);
    }
  }

  /** Where WireGuard sends a packet for `ip`: the peer holding it. */
  routeOf(ip: string): string | undefined {
    for (const [k, p] of this.peers) if (p.allowed.includes(`${ip}/32`)) return k;
    return undefined;
  }
}

describe("direct-then-hub per peer", () => {
  it("keeps a peer direct while it answers, moves it to the hub when silent, and back at the next direct handshake", async () => {
    let now = 1_700_000_000_000;
    const wg = new SimWg();
    const relay = new RelayTracker({ self: "linux", nowMs: () => now });
    const sync = async () => {
      const plan = await chooseBackend("linux").plan({
        state,
        roster,
        dataDir: "/var/lib/potluck",
        privateKeyPath: "/var/lib/potluck/wg.key",
        privateKey: () => "priv",
        probe: wg.probe(),
        relay,
      });
      wg.apply(plan);
      return plan;
    };
    const answer = (k: string) => {
      const p = wg.peers.get(k);
      if (p === undefined) throw new Error("no such peer");
      p.handshakeS = Math.floor(now / 1000);
      p.rx += 92;
    };
    const tick = async (ms: number) => {
      now += ms;
      return sync();
    };

    await sync();
    expect(wg.routeOf(box.meshIp)).toBe(box.wireguardPublicKey);
    expect(wg.routeOf(phone.meshIp)).toBe(hub.wireguardPublicKey); // a spoke rides on the hub always
    answer(box.wireguardPublicKey);
    answer(hub.wireguardPublicKey);
    // Answering every keepalive: direct for as long as that goes on.
    for (let t = 0; t < 4 * directSilentMs; t += 5_000) {
      await tick(5_000);
      if (t % 20_000 === 0) answer(box.wireguardPublicKey);
    }
    expect(relay.mode(box.wireguardPublicKey)).toBe("direct");
    expect(wg.routeOf(box.meshIp)).toBe(box.wireguardPublicKey);

    // The direct path goes silent: still direct just under the limit, on the hub just past it.
    answer(box.wireguardPublicKey);
    await tick(1_000);
    await tick(directSilentMs - 1_000);
    expect(relay.mode(box.wireguardPublicKey)).toBe("direct");
    const moved = await tick(5_000);
    expect(moved.peers.paths).toEqual([
      { name: "box", to: "hub", reason: expect.stringMatching(/nothing received directly for \d+ s/) },
    ]);
    expect(wg.routeOf(box.meshIp)).toBe(hub.wireguardPublicKey);
    expect(wg.peers.get(hub.wireguardPublicKey)?.allowed.sort()).toEqual(
      [`${hub.meshIp}/32`, `${box.meshIp}/32`, `${phone.meshIp}/32`].sort(),
    );
    // The direct peer is kept, without an address, and re-added at once so a fresh handshake starts.
    const direct = wg.peers.get(box.wireguardPublicKey);
    expect(direct).toMatchObject({ endpoint: box.endpoints[0], allowed: [] });
    expect(wg.ran).toContainEqual(["wg", "set", "potluck0", "peer", box.wireguardPublicKey, "remove"]);

    // Retries come every directRetryMs while the path stays blocked, never more often.
    const retriesBefore = wg.ran.filter((a) => a[5] === "remove").length;
    for (let t = 0; t < 3 * directRetryMs; t += 5_000) await tick(5_000);
    const retries = wg.ran.filter((a) => a[5] === "remove").length - retriesBefore;
    expect(retries).toBe(3);
    expect(wg.routeOf(box.meshIp)).toBe(hub.wireguardPublicKey);

    // The block lifts: the next retry's handshake completes, and the /32 comes back.
    answer(box.wireguardPublicKey);
    const back = await tick(5_000);
    expect(back.peers.paths).toEqual([
      { name: "box", to: "direct", reason: expect.stringMatching(/direct handshake/) },
    ]);
    expect(wg.routeOf(box.meshIp)).toBe(box.wireguardPublicKey);
    expect(wg.peers.get(hub.wireguardPublicKey)?.allowed.sort()).toEqual(
      [`${hub.meshIp}/32`, `${phone.meshIp}/32`].sort(),
    );
    // A sync with nothing new changes nothing.
    wg.ran.length = 0;
    await tick(1_000);
    expect(wg.ran).toEqual([]);
  });

  it("moves a new peer that never handshakes to the hub after firstHandshakeWaitMs; the hub itself never moves", async () => {
    let now = 0;
    const relay = new RelayTracker({ self: "linux", nowMs: () => now });
    const dump = parseWgDump(
      [
        "priv\tpub\t51820\toff",
        `${hub.wireguardPublicKey}\t(none)\t192.168.1.10:51820\t100.64.0.1/32\t0\t0\t0\t25`,
        `${box.wireguardPublicKey}\t(none)\t192.168.1.30:51820\t100.64.0.3/32\t0\t0\t0\t25`,
      ].join("\n"),
    ).peers;
    expect(relay.decide(dump, roster.machines, "hub").viaHub.size).toBe(0);
    now = firstHandshakeWaitMs - 1;
    expect(relay.decide(dump, roster.machines, "hub").viaHub.size).toBe(0);
    now = firstHandshakeWaitMs + 1;
    const decision = relay.decide(dump, roster.machines, "hub");
    expect([...decision.viaHub]).toEqual([box.wireguardPublicKey]);
    expect(decision.changes[0]?.reason).toMatch(/no direct handshake within 15 s/);
    expect(decision.retry).toEqual([{ publicKey: box.wireguardPublicKey, endpoint: "192.168.1.30:51820" }]);
  });

  it("never relays on the hub itself, without a hub, or through a hub with no endpoint", () => {
    const dump = parseWgDump(
      ["priv\tpub\t51820\toff", `${box.wireguardPublicKey}\t(none)\t(none)\t100.64.0.3/32\t0\t0\t0\t25`].join("\n"),
    ).peers;
    const late = () => 10 * directSilentMs;
    expect(new RelayTracker({ self: "hub", nowMs: late }).decide(dump, roster.machines, "hub").viaHub.size).toBe(0);
    const noHub = new RelayTracker({ self: "linux", nowMs: late });
    noHub.decide(dump, roster.machines, null);
    expect(noHub.decide(dump, roster.machines, null).viaHub.size).toBe(0);
    const hubless = [{ ...hub, endpoints: [] }, linux, box];
    const t = new RelayTracker({ self: "linux", nowMs: late });
    t.decide(dump, hubless, "hub");
    expect(t.decide(dump, hubless, "hub").viaHub.size).toBe(0);
  });

  it("forgets a peer that left the roster", () => {
    let now = 0;
    const relay = new RelayTracker({ self: "linux", nowMs: () => now });
    const dump = parseWgDump(
      [
        "priv\tpub\t51820\toff",
        `${box.wireguardPublicKey}\t(none)\t192.168.1.30:51820\t100.64.0.3/32\t0\t0\t0\t25`,
      ].join("\n"),
    ).peers;
    relay.decide(dump, roster.machines, "hub");
    now = firstHandshakeWaitMs + 1;
    expect(relay.decide(dump, roster.machines, "hub").viaHub.has(box.wireguardPublicKey)).toBe(true);
    relay.decide(dump, [hub, linux], "hub");
    expect(relay.mode(box.wireguardPublicKey)).toBe("direct");
  });
});
