import { DiagnosticsReport, type LayerCode } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { Failure, TimeToVisibleMs } from "../src/index.js";
import {
  capabilities,
  FakeClock,
  fakeProbes,
  fwStatus,
  healthyWorld,
  httpError,
  keys,
  makeDiagnostics,
  refused,
  rosterEntry,
  timedOut,
  type World,
} from "./fakes.js";

const order: LayerCode[] = [
  "local-sidecar",
  "coordinator",
  "roster",
  "tunnel",
  "path",
  "data-plane",
  "capabilities",
  "model-runtime",
  "first-token",
];

/** Checks until the failure has persisted past its time-to-visible, as a refreshing dashboard would. */
async function persistentReport(
  world: World,
  clock: FakeClock,
  peer = "linux",
  extra: Parameters<typeof makeDiagnostics>[2] = {},
) {
  const diagnostics = makeDiagnostics(world, clock, extra);
  await diagnostics.check(peer);
  clock.advance(10_000);
  return DiagnosticsReport.parse(await diagnostics.check(peer));
}

function expectFailedAt(report: DiagnosticsReport, code: LayerCode, failure: string) {
  const index = order.indexOf(code);
  expect(report.usable).toBe(false);
  expect(report.firstFailure).toBe(code);
  const layer = report.layers[index];
  expect(layer).toMatchObject({ code, status: "failed", failure });
  for (const before of report.layers.slice(0, index)) expect(["ok", "warning", "skipped"]).toContain(before.status);
  for (const after of report.layers.slice(index + 1)) {
    expect(after).toMatchObject({ status: "suppressed", suppressedBy: code });
    expect(after.failure).toBeUndefined();
    expect(after.fix).toBeUndefined();
  }
  return layer!;
}

describe("classification of each named failure", () => {
  it("healthy: every layer passes and the first token arrives", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const report = DiagnosticsReport.parse(await makeDiagnostics(world, clock).check("linux"));
    expect(report.layers.map((l) => l.code)).toEqual(order);
    expect(report.layers.map((l) => l.status)).toEqual(order.map(() => "ok"));
    expect(report).toMatchObject({ usable: true, firstFailure: null, model: "tiny", from: "mac", peer: "linux" });
    expect(world.calls).toEqual([
      "local",
      "coordinator",
      "roster",
      "wg",
      "probe:32",
      "probe:1400",
      "capabilities",
      "infer",
    ]);
  });

  it("local sidecar not listening", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), local: refused() };
    const layer = expectFailedAt(await persistentReport(world, clock), "local-sidecar", Failure.sidecarDown);
    expect(layer.fix).toContain("potluck up");
    expect(world.calls.filter((c) => c !== "local")).toEqual([]);
  });

  it("coordinator down shows only after its time-to-visible", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), coordinator: refused() };
    const diagnostics = makeDiagnostics(world, clock);
    const first = await diagnostics.check("linux");
    expect(first.layers[1]).toMatchObject({ status: "pending", failure: Failure.coordinatorUnreachable });
    expect(first.firstFailure).toBeNull();
    expect(first.usable).toBe(false);
    clock.advance(TimeToVisibleMs.coordinator);
    const layer = expectFailedAt(await diagnostics.check("linux"), "coordinator", Failure.coordinatorUnreachable);
    expect(layer.message).toContain("coordinator unreachable at http://198.18.7.1:8320");
    expect(layer.fix).toContain("curl http://198.18.7.1:8320/health");
  });

  it("unknown machine: not in the roster", async () => {
    const clock = new FakeClock();
    const layer = expectFailedAt(
      await persistentReport(healthyWorld(clock), clock, "windows"),
      "roster",
      Failure.unknownMachine,
    );
    expect(layer.message).toContain("no machine named windows");
    expect(layer.fix).toContain("on windows run potluck join http://198.18.7.1:8320 TOKEN");
  });

  it("stale key flagged by the coordinator", async () => {
    const clock = new FakeClock();
    const world = {
      ...healthyWorld(clock),
      roster: [rosterEntry("linux", "100.64.0.3", keys.linux, { staleKey: true })],
    };
    const layer = expectFailedAt(await persistentReport(world, clock), "roster", Failure.staleKey);
    expect(layer.message).toContain("stale WireGuard key");
  });

  it("roster key not configured on potluck0", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), roster: [rosterEntry("linux", "100.64.0.3", keys.other)] };
    const layer = expectFailedAt(await persistentReport(world, clock), "tunnel", Failure.peerNotConfigured);
    expect(layer.fix).toContain("wg show potluck0 peers");
  });

  it("no handshake even after a nudge: peer off or key wrong", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    (world.tunnel as { latestHandshakeAtMs: number | null }[])[0]!.latestHandshakeAtMs = null;
    world.smallProbe = timedOut();
    const layer = expectFailedAt(await persistentReport(world, clock), "tunnel", Failure.noHandshake);
    expect(world.calls).toContain("nudge");
    expect(layer.message).toContain("powered off");
    expect(layer.fix).toContain("power on linux");
    expect(layer.fix).toContain("wg show potluck0 public-key");
    expect(layer.offerFix).toBeUndefined();
  });

  it("no handshake with the local firewall missing its rules names the firewall and offers the reapply", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), firewall: fwStatus(true) };
    (world.tunnel as { latestHandshakeAtMs: number | null }[])[0]!.latestHandshakeAtMs = clock.ms - 400_000;
    const layer = expectFailedAt(await persistentReport(world, clock), "tunnel", Failure.firewallDrop);
    expect(layer.message).toContain("firewall likely blocking mesh traffic on potluck0");
    expect(layer.offerFix).toBe("fw-reapply");
  });

  it("an idle tunnel is nudged and passes once WireGuard handshakes", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), handshakeOnNudge: true };
    (world.tunnel as { latestHandshakeAtMs: number | null }[])[0]!.latestHandshakeAtMs = null;
    const report = await makeDiagnostics(world, clock).check("linux");
    expect(report.usable).toBe(true);
    expect(world.calls).toContain("nudge");
  });

  it("a sidecar not allowed to read WireGuard warns and lets the data plane decide", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), tunnel: new Error("Unable to access interface: Operation not permitted") };
    const report = await makeDiagnostics(world, clock).check("linux");
    expect(report.usable).toBe(true);
    expect(report.layers[3]).toMatchObject({ status: "warning", failure: Failure.tunnelUnreadable });
    expect(report.layers[3]!.fix).toContain("AmbientCapabilities=CAP_NET_ADMIN");
    expect(report.layers[4]!.status).toBe("skipped");
    world.smallProbe = timedOut();
    const blocked = await makeDiagnostics(world, clock).check("linux", { forceFresh: true });
    expect(blocked.layers[5]).toMatchObject({ failure: Failure.firewallDrop });
    expect(blocked.layers[5]!.message).toContain("could not be read to tell a firewall from a powered-off peer");
  });

  it("no endpoint for the peer", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    (world.tunnel as { endpoint: string | null }[])[0]!.endpoint = null;
    expectFailedAt(await persistentReport(world, clock), "path", Failure.noEndpoint);
  });

  it("a relayed path is a warning that does not block the prompt", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const report = await makeDiagnostics(world, clock, { relays: ["198.18.7.3:51820"] }).check("linux");
    expect(report.usable).toBe(true);
    expect(report.layers[4]).toMatchObject({ status: "warning", failure: Failure.relayed });
    expect(report.layers[5]!.status).toBe("ok");
  });

  it("connection refused: the peer is up but its sidecar is not listening", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: refused() };
    const layer = expectFailedAt(await persistentReport(world, clock), "data-plane", Failure.connectionRefused);
    expect(layer.message).toContain("nothing listens on 100.64.0.3:8321");
    expect(layer.fix).toContain("start the sidecar on linux");
    // Its OS is not known before its capabilities answer: the fix names the service and where to look.
    expect(layer.fix).toContain("start its potluck-sidecar service (potluck service status there shows how)");
  });

  it("timeout with a fresh handshake: firewall drop, peer side when the local watcher is intact", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), firewall: fwStatus(false) };
    const layer = expectFailedAt(await persistentReport(world, clock), "data-plane", Failure.firewallDrop);
    expect(layer.message).toContain("firewall likely blocking mesh traffic on potluck0");
    expect(layer.fix).toContain("on linux");
    expect(layer.fix).toContain("nft insert rule inet mullvad input iifname potluck0 accept");
    expect(layer.offerFix).toBeUndefined();
  });

  it("timeout with the local watcher reporting missing rules offers the reapply", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), firewall: fwStatus(true) };
    const layer = expectFailedAt(await persistentReport(world, clock), "data-plane", Failure.firewallDrop);
    expect(layer.message).toContain("mullvad firewall present and missing: inet mullvad input iifname potluck0 accept");
    expect(layer.fix).toContain("on mac");
    expect(layer.offerFix).toBe("fw-reapply");
  });

  it("a peer gone silent behind a recent handshake fails the tunnel, not the data plane", async () => {
    const clock = new FakeClock();
    const world = {
      ...healthyWorld(clock),
      smallProbe: timedOut(),
      peerWireguardAlive: false,
      firewall: fwStatus(false),
    };
    const report = await makeDiagnostics(world, clock).check("linux");
    const layer = expectFailedAt(DiagnosticsReport.parse(report), "tunnel", Failure.peerSilent);
    expect(layer.message).toContain("linux's WireGuard stopped answering on potluck0");
    expect(layer.fix).toContain("power on linux");
    expect(report.layers[5]).toMatchObject({ status: "suppressed", suppressedBy: "tunnel" });
  });

  it("probes that never enter the tunnel: a firewall on this machine", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), localOutputDropped: true };
    const layer = expectFailedAt(await persistentReport(world, clock), "data-plane", Failure.firewallDrop);
    expect(layer.message).toContain("packets to 100.64.0.3 never entered potluck0 on mac");
    expect(layer.fix).toContain("rules on mac");
    expect(layer.offerFix).toBeUndefined();
  });

  it("probes that never enter the tunnel with a fw-watcher here: the reapply is offered even on a stale reading", async () => {
    const clock = new FakeClock();
    const world = {
      ...healthyWorld(clock),
      smallProbe: timedOut(),
      localOutputDropped: true,
      firewall: fwStatus(false),
    };
    const layer = expectFailedAt(await persistentReport(world, clock), "data-plane", Failure.firewallDrop);
    expect(layer.offerFix).toBe("fw-reapply");
  });

  it("a fresh coordinator heartbeat proves the peer is up without waiting for WireGuard", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), peerWireguardAlive: false };
    world.roster = [
      rosterEntry("linux", "100.64.0.3", keys.linux, { lastHeartbeatAt: new Date(clock.ms - 3_000).toISOString() }),
    ];
    const startedAt = clock.ms;
    const report = await makeDiagnostics(world, clock).check("linux");
    expect(report.layers[5]).toMatchObject({ status: "pending", failure: Failure.firewallDrop });
    expect(report.layers[5]!.message).toContain("the coordinator heard its heartbeat 3 s ago");
    expect(clock.ms - startedAt).toBeLessThan(1_000);
  });

  it("the peer's LAN address answering proves it is up without waiting for WireGuard's keepalive", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), peerWireguardAlive: false, underlayAnswers: true };
    const startedAt = clock.ms;
    const report = await makeDiagnostics(world, clock).check("linux");
    expect(report.layers[5]).toMatchObject({ status: "pending", failure: Failure.firewallDrop });
    expect(report.layers[5]!.message).toContain("linux is up: its address 198.18.7.3 on the local network answers");
    expect(world.calls).toContain("underlay:198.18.7.3");
    expect(clock.ms - startedAt).toBeLessThan(1_000);
  });

  it("a silent LAN address leaves the decision to WireGuard: a powered-off peer is still named silent", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), peerWireguardAlive: false, underlayAnswers: false };
    const report = await makeDiagnostics(world, clock).check("linux");
    expectFailedAt(DiagnosticsReport.parse(report), "tunnel", Failure.peerSilent);
  });

  it("a relayed endpoint is never asked: a relay answering says nothing about the peer", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), peerWireguardAlive: false, underlayAnswers: true };
    const report = await makeDiagnostics(world, clock, { relays: ["198.18.7.3:51820"] }).check("linux");
    expect(world.calls.some((c) => c.startsWith("underlay:"))).toBe(false);
    expectFailedAt(DiagnosticsReport.parse(report), "tunnel", Failure.peerSilent);
  });

  it("the peer's fw-watcher reporting missing rules names the firewall on the peer at once, with the rules and the fix there", async () => {
    const clock = new FakeClock();
    const world = {
      ...healthyWorld(clock),
      smallProbe: timedOut(),
      peerWireguardAlive: false,
      firewall: fwStatus(false),
    };
    world.peerFirewall = {
      status: { ...fwStatus(true, "linux"), lastError: "nft: Operation not permitted" },
      receivedAtMs: clock.ms - 4_000,
    };
    const diagnostics = makeDiagnostics(world, clock);
    const startedAt = clock.ms;
    const first = await diagnostics.check("linux");
    expect(first.layers[5]).toMatchObject({ status: "pending", failure: Failure.firewallDrop });
    expect(clock.ms - startedAt).toBeLessThan(1_000);
    clock.advance(10_000);
    world.peerFirewall.receivedAtMs = clock.ms - 1_000;
    const layer = expectFailedAt(
      DiagnosticsReport.parse(await diagnostics.check("linux")),
      "data-plane",
      Failure.firewallDrop,
    );
    expect(layer.message).toContain("firewall likely blocking mesh traffic on potluck0");
    expect(layer.message).toContain(
      "the fw-watcher on linux reports the mullvad firewall present and missing: inet mullvad input iifname potluck0 accept",
    );
    expect(layer.fix).toMatch(
      /^on linux, whose fw-watcher reports the potluck0 accept rules missing; its last reapply failed: nft: Operation not permitted/,
    );
    expect(layer.fix).toContain("sudo potluck-fw-watcher --install --interface potluck0");
    expect(layer.fix).not.toContain("fw-watcher on mac");
    // The fix runs on linux: this machine's watcher cannot apply it, so nothing is offered here.
    expect(layer.offerFix).toBeUndefined();
  });

  it("asks this machine's fw-watcher once per classification, even when both watchers report missing rules", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), firewall: fwStatus(true) };
    world.peerFirewall = { status: fwStatus(true, "linux"), receivedAtMs: clock.ms - 1_000 };
    const probes = fakeProbes(world, clock);
    const firewall = probes.firewall as NonNullable<typeof probes.firewall>;
    let asked = 0;
    probes.firewall = { ...firewall, status: (signal) => (asked++, firewall.status(signal)) };
    const report = await makeDiagnostics(world, clock, { probes }).check("linux");
    // Both drop the mesh; this machine's block is the one to fix first, and its fix can be offered.
    expect(report.layers[5]).toMatchObject({ failure: Failure.firewallDrop, offerFix: "fw-reapply" });
    expect(report.layers[5]?.message).toContain("the fw-watcher on mac reports mullvad firewall present and missing");
    expect(asked).toBe(1);
  });

  it("a peer fw-watcher status older than its publish interval is not taken as the firewall now", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), peerWireguardAlive: false };
    world.peerFirewall = { status: fwStatus(true, "linux"), receivedAtMs: clock.ms - 60_000 };
    expectFailedAt(
      DiagnosticsReport.parse(await makeDiagnostics(world, clock).check("linux")),
      "tunnel",
      Failure.peerSilent,
    );
  });

  it("a peer watcher whose last reading found its rules in place: the fix still runs on the peer, and says how old that reading is", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), underlayAnswers: true };
    world.peerFirewall = {
      status: { ...fwStatus(false, "linux"), checkedAt: new Date(clock.ms - 20_000).toISOString() },
      receivedAtMs: clock.ms,
    };
    const diagnostics = makeDiagnostics(world, clock);
    await diagnostics.check("linux");
    clock.advance(10_000);
    world.peerFirewall.receivedAtMs = clock.ms;
    const layer = expectFailedAt(
      DiagnosticsReport.parse(await diagnostics.check("linux")),
      "data-plane",
      Failure.firewallDrop,
    );
    expect(layer.fix).toMatch(
      /^on linux: its fw-watcher's last reading \(3\d s ago\) found the potluck0 accept rules in place; if a VPN came up since, reapply them there now with sudo potluck-fw-watcher --install/,
    );
    expect(layer.message).toContain("the fw-watcher on linux reports its rules intact (mullvad present)");
    expect(layer.offerFix).toBeUndefined();
  });

  it("a remote firewall with nothing known about the peer's watcher: the fix names the peer and installing the watcher there", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut(), underlayAnswers: true };
    const layer = expectFailedAt(await persistentReport(world, clock), "data-plane", Failure.firewallDrop);
    expect(layer.fix).toMatch(
      /^on linux \(its firewall drops the mesh; no fw-watcher status from linux is known here\): sudo potluck-fw-watcher --install --interface potluck0/,
    );
    expect(layer.fix).toContain("sudo systemctl enable --now potluck-fw-watcher");
    expect(layer.fix).not.toMatch(/on mac|fw-watcher on mac/);
  });

  it("small probe ok but large probe lost: MTU black hole", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), largeProbe: timedOut() };
    const layer = expectFailedAt(await persistentReport(world, clock), "data-plane", Failure.mtuBlackhole);
    expect(layer.fix).toContain("ip link set dev potluck0 mtu 1200");
  });

  it("a peer that rejects the signature is unauthorized, not a network failure", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: httpError(401, "unauthorized") };
    expectFailedAt(await persistentReport(world, clock), "data-plane", Failure.unauthorized);
  });

  it("model still loading, with progress", async () => {
    const clock = new FakeClock();
    const world = {
      ...healthyWorld(clock),
      capabilities: capabilities([{ id: "qwen", state: "loading", progress: 0.42, testModel: false }]),
    };
    const layer = expectFailedAt(await persistentReport(world, clock), "model-runtime", Failure.modelLoading);
    expect(layer.message).toContain("model runtime not ready: qwen is still loading on linux (42%)");
  });

  it("model failed to load, with the runtime's own reason", async () => {
    const clock = new FakeClock();
    const reason = "libcudart.so.12: cannot open shared object file";
    const world = {
      ...healthyWorld(clock),
      capabilities: capabilities([{ id: "qwen", state: "failed", reason, testModel: false }]),
    };
    const layer = expectFailedAt(await persistentReport(world, clock), "model-runtime", Failure.modelFailed);
    expect(layer.message).toContain(reason);
    expect(layer.fix).toContain("systemctl restart potluck-sidecar");
  });

  it("names services in each OS's own tools: this machine's by its platform, a peer's by its capabilities", async () => {
    const clock = new FakeClock();
    const down = { ...healthyWorld(clock), local: refused() };
    const here = expectFailedAt(
      await persistentReport(down, clock, "linux", { platform: "win32" }),
      "local-sidecar",
      Failure.sidecarDown,
    );
    expect(here.fix).toContain("Start-Service potluck-sidecar (PowerShell as administrator)");
    const onMac = capabilities([{ id: "qwen", state: "failed", reason: "no Metal device", testModel: false }]);
    onMac.hardware.platform = "darwin";
    const world = { ...healthyWorld(clock), capabilities: onMac };
    const there = expectFailedAt(await persistentReport(world, clock), "model-runtime", Failure.modelFailed);
    expect(there.fix).toContain("then restart it: sudo launchctl kickstart -k system/org.potluck.sidecar");
  });

  it("a requested model the peer does not serve", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const report = await makeDiagnostics(world, clock).check("linux", { model: "llama-70b" });
    expect(report.layers[7]).toMatchObject({ status: "failed", failure: Failure.noModel });
    expect(report.layers[7]!.message).toContain("tiny (ready)");
  });

  it("503 while loading on the first token", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), firstToken: httpError(503) };
    expectFailedAt(await persistentReport(world, clock), "first-token", Failure.modelLoading);
  });

  it("the local path skips the mesh layers and runs the model over loopback", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const report = await makeDiagnostics(world, clock).check("mac");
    expect(report.usable).toBe(true);
    expect(report.layers.filter((l) => l.status === "skipped").map((l) => l.code)).toEqual([
      "tunnel",
      "path",
      "data-plane",
    ]);
    expect(world.calls).not.toContain("wg");
  });
});
