import { DiagnosticsReport } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { Diagnostics } from "../src/index.js";
import { FakeClock, fakeProbes, healthyWorld, keys, rosterEntry, type World } from "./fakes.js";

// Relayed via the hub is a state, not a failure: the mesh agent moved the peer's /32 onto the
// hub's WireGuard peer (apps/mesh/src/relay.ts). Doctor follows the address to the peer carrying
// it, checks the handshake with the hub, and says what the detour costs over the last direct
// round trip. The real thing (nftables blocking UDP between lab machines) is
// tools/test/e2e/mesh-relay.test.ts.
const hubKey = "aHViaHViaHViaHViaHViaHViaHViaHViaHViaHViaHU=";

/** Each small probe takes `rttMs` on the fake clock, so the round trips are what the world says. */
function timedDiagnostics(world: World, clock: FakeClock, rtt: { ms: number }) {
  const probes = fakeProbes(world, clock);
  const probe = probes.peer.probe;
  probes.peer.probe = async (target, bytes, signal) => {
    clock.advance(rtt.ms);
    return probe(target, bytes, signal);
  };
  return new Diagnostics({ from: "mac", interfaceName: "potluck0", localPort: 8321, peerPort: 8321, probes, clock });
}

function relayedWorld(clock: FakeClock): World {
  const world = healthyWorld(clock);
  world.roster.push(rosterEntry("hub", "100.64.0.1", hubKey, { endpoints: ["198.18.7.1:51820"] }));
  world.tunnel = [
    // linux's own peer: kept, with no address and no recent handshake (its direct UDP is blocked).
    {
      publicKey: keys.linux,
      endpoint: "198.18.7.3:51820",
      allowedIps: [],
      latestHandshakeAtMs: clock.ms - 600_000,
      rxBytes: 1,
      txBytes: 1,
    },
    {
      publicKey: hubKey,
      endpoint: "198.18.7.1:51820",
      allowedIps: ["100.64.0.1/32", "100.64.0.3/32"],
      latestHandshakeAtMs: clock.ms - 10_000,
      rxBytes: 1,
      txBytes: 1,
    },
  ];
  return world;
}

describe("relayed via the hub", () => {
  it("is a healthy state: the tunnel is the hub's, the path says relayed and what it adds over the direct one", async () => {
    const clock = new FakeClock();
    const rtt = { ms: 0.4 };
    const world = healthyWorld(clock);
    const diagnostics = timedDiagnostics(world, clock, rtt);
    const direct = DiagnosticsReport.parse(await diagnostics.check("linux", { forceFresh: true }));
    expect(direct.layers.find((l) => l.code === "path")?.message).toBe("direct to 198.18.7.3:51820");

    // The direct path goes; the agent moves linux's /32 onto the hub's peer; the hub costs more.
    const relayed = relayedWorld(clock);
    Object.assign(world, { roster: relayed.roster, tunnel: relayed.tunnel });
    rtt.ms = 1.1;
    clock.advance(60_000);
    const report = DiagnosticsReport.parse(await diagnostics.check("linux", { forceFresh: true }));
    expect(report.usable, JSON.stringify(report.layers, null, 1)).toBe(true);
    expect(report.firstFailure).toBeNull();
    expect(report.layers.map((l) => l.status)).toEqual(report.layers.map(() => "ok"));
    const tunnel = report.layers.find((l) => l.code === "tunnel");
    expect(tunnel?.message).toMatch(/^handshake with hub \(relaying to linux\) on potluck0 \d+ s ago$/);
    const path = report.layers.find((l) => l.code === "path");
    expect(path?.failure).toBeUndefined();
    expect(path?.message).toMatch(/^relayed via hub hub: no direct WireGuard path to linux now/);
    expect(path?.message).toContain("1.1 ms round trip through it, +0.7 ms over the last direct one");
  });

  it("without a direct round trip measured here, says the cost is not known yet rather than guessing", async () => {
    const clock = new FakeClock();
    const world = relayedWorld(clock);
    const report = await timedDiagnostics(world, clock, { ms: 2 }).check("linux");
    const path = report.layers.find((l) => l.code === "path");
    expect(path).toMatchObject({ status: "ok" });
    expect(path?.message).toContain("2.0 ms round trip through it (no direct round trip measured here yet to compare)");
  });

  it("a spoke with no peer of its own on this machine (its address on the hub's peer) is relayed, not unconfigured", async () => {
    const clock = new FakeClock();
    const world = relayedWorld(clock);
    world.tunnel = (world.tunnel as Exclude<World["tunnel"], Error>).filter((p) => p.publicKey === hubKey);
    const report = await timedDiagnostics(world, clock, { ms: 1 }).check("linux");
    expect(report.usable).toBe(true);
    expect(report.layers.find((l) => l.code === "path")?.message).toMatch(/^relayed via hub hub/);
  });

  it("a hub whose own handshake is stale fails the tunnel layer, naming the hub", async () => {
    const clock = new FakeClock();
    const world = relayedWorld(clock);
    for (const p of world.tunnel as Exclude<World["tunnel"], Error>) p.latestHandshakeAtMs = null;
    world.handshakeOnNudge = false;
    const diagnostics = timedDiagnostics(world, clock, { ms: 1 });
    await diagnostics.check("linux");
    clock.advance(10_000);
    const report = await diagnostics.check("linux");
    expect(report.firstFailure).toBe("tunnel");
    const tunnel = report.layers.find((l) => l.code === "tunnel");
    expect(tunnel?.failure).toBe("no-handshake");
  });
});
