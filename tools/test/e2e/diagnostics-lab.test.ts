import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Defaults, DiagnosticsOverview, DiagnosticsReport, type LayerCode, type LayerResult } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDiagnosticsLab,
  parseCheckLines,
  sidecarPort,
  type CheckLine,
  type DiagnosticsLab,
} from "../../bench/diagnostics/lab-setup.js";
import { pollUntil } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// Diagnostics in the lab, one scenario per named failure, all on one lab: mac runs the real probes
// (wg on its potluck0, signed HTTP to linux's real sidecar over the mesh) while the lab injects the
// fault on linux. Each scenario asserts the failing layer's code and failure, its fix text, and that
// every layer after it is suppressed behind it rather than failed.

/** Long enough for a fault to pass its time-to-visible on a loaded machine, with room to spare. */
const watchMs = 90_000;

function last(lines: CheckLine[]): DiagnosticsReport {
  return lines.at(-1)!.report;
}

function expectNamed(report: DiagnosticsReport, code: LayerCode, failure: string, fixParts: string[]): LayerResult {
  const index = report.layers.findIndex((l) => l.code === code);
  const layer = report.layers[index]!;
  expect(report.firstFailure, JSON.stringify(report.layers, null, 1)).toBe(code);
  expect(report.usable).toBe(false);
  expect(layer).toMatchObject({ status: "failed", failure });
  for (const part of fixParts) expect(layer.fix).toContain(part);
  for (const before of report.layers.slice(0, index)) expect(["ok", "warning", "skipped"]).toContain(before.status);
  for (const after of report.layers.slice(index + 1))
    expect(after).toMatchObject({ status: "suppressed", suppressedBy: code });
  return layer;
}

describe("diagnostics over the lab mesh", () => {
  let d: DiagnosticsLab;
  beforeAll(async () => {
    d = await createDiagnosticsLab();
  }, 300_000);
  afterAll(async () => {
    await d?.teardown();
  });

  /** `potluck doctor ARGS` run on mac against mac's real sidecar. */
  const doctor = (args: string[]) =>
    d.mac.exec([process.execPath, join(repoRoot, "bin/potluck.mjs"), "doctor", ...args], {
      cwd: repoRoot,
      timeoutMs: 180_000,
      env: { POTLUCK_MACHINE: "mac" },
    });

  /** After a fault is undone, the path must be usable again before the next scenario. */
  async function healthyAgain() {
    expect(await d.linuxReady(), "linux's sidecar over the mesh").toBe(true);
    const report = last(await d.check({ until: "usable", watchMs }));
    expect(report.usable, JSON.stringify(report.layers, null, 1)).toBe(true);
  }

  it("healthy: every layer passes and the first token comes back from linux", async () => {
    const report = last(await d.check({ until: "usable", watchMs }));
    expect(report.usable, JSON.stringify(report.layers, null, 1)).toBe(true);
    // No coordinator in this lab (a static roster file): that layer is skipped, every other one passes.
    expect(report.layers.map((l) => l.status)).toEqual(
      report.layers.map((l) => (l.code === "coordinator" ? "skipped" : "ok")),
    );
    expect(report.layers.find((l) => l.code === "first-token")?.message).toMatch(/first token from linux in \d+ ms/);
    expect(report.layers.find((l) => l.code === "tunnel")?.message).toMatch(/handshake with linux on potluck0/);
  });

  it("the sidecar serves the same answer as JSON, to potluck doctor, and on its dashboard page", async () => {
    const viaSidecar = await d.mac.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/diagnostics/linux?fresh=1`], {
      timeoutMs: 120_000,
    });
    expect(viaSidecar.code, viaSidecar.stderr).toBe(0);
    expect(DiagnosticsReport.parse(JSON.parse(viaSidecar.stdout))).toMatchObject({
      from: "mac",
      peer: "linux",
      usable: true,
      firstFailure: null,
    });

    const human = await doctor(["linux"]);
    expect(human.code, human.stdout + human.stderr).toBe(0);
    expect(human.stdout).toMatch(/mac → linux \[[^\]]+\]: can serve a prompt/);
    const all = await doctor(["--json"]);
    expect(all.code, all.stdout + all.stderr).toBe(0);
    const reports = DiagnosticsReport.array().parse(JSON.parse(all.stdout));
    expect(reports.map((r) => r.peer)).toEqual(["mac", "linux"]);
    const overview = await d.mac.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/diagnostics`], {
      timeoutMs: 120_000,
    });
    expect(DiagnosticsOverview.parse(JSON.parse(overview.stdout)).reports).toHaveLength(2);

    const page = await d.mac.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/dashboard`]);
    expect(page.stdout).toContain("<title>Potluck household</title>");
    // Off the box, the mesh sees only /health and /peer/*.
    const fromLinux = await d.linux.exec([
      "curl",
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://${d.mac.meshIp}:${sidecarPort}/diagnostics`,
    ]);
    expect(fromLinux.stdout).toBe("403");
  });

  it("unknown machine: not in the roster", async () => {
    const layer = expectNamed(last(await d.check({ peer: "windows" })), "roster", "unknown-machine", [
      "on windows run potluck join",
    ]);
    expect(layer.message).toContain("no machine named windows");
  });

  it("stale key: the roster flags linux's WireGuard key", async () => {
    expectNamed(last(await d.check({ roster: d.rosters.staleLinux })), "roster", "stale-key", ["on linux, rejoin"]);
  });

  it("coordinator down: nothing listens where POTLUCK_COORDINATOR_URL points", async () => {
    const url = `http://${d.linux.underlayIp}:${Defaults.coordinatorPort}`;
    const layer = expectNamed(
      last(await d.check({ coordinator: url, until: "coordinator", watchMs })),
      "coordinator",
      "coordinator-unreachable",
      [`curl ${url}/health`],
    );
    expect(layer.message).toContain(`coordinator unreachable at ${url}`);
  });

  it("Mullvad killswitch on linux: firewall likely blocking mesh traffic on potluck0", async () => {
    const undo = await d.lab.faults.mullvadKillswitch("linux");
    try {
      const layer = expectNamed(last(await d.check({ until: "data-plane", watchMs })), "data-plane", "firewall-drop", [
        "on linux (its firewall drops the mesh; no fw-watcher status from linux is known here): sudo potluck-fw-watcher --install --interface potluck0",
        "nft insert rule inet mullvad input iifname potluck0 accept",
      ]);
      expect(layer.fix).not.toContain("on mac");
      expect(layer.message).toContain("firewall likely blocking mesh traffic on potluck0");
      // The killswitch lets the LAN through: linux answering on its own address proves it is up.
      expect(layer.message).toContain(`linux is up: its address ${d.linux.underlayIp} on the local network answers`);
      const human = await doctor(["linux"]);
      expect(human.code, human.stdout).toBe(1);
      expect(human.stdout).toMatch(/\[FAIL\] Peer data plane +firewall likely blocking mesh traffic on potluck0/);
      expect(human.stdout).toMatch(/\[ -- \] First token +suppressed: Peer data plane failed \(firewall-drop\)/);
    } finally {
      await undo();
    }
    await healthyAgain();
  });

  it("Mullvad killswitch on linux whose fw-watcher cannot repair it: its status on NATS names the missing rules and the fix on linux", async () => {
    // NATS on mac's LAN address; linux's watcher publishes there, mac's diagnostics listen.
    const natsPort = 4223;
    const natsPrefix = `t${Date.now().toString(36)}`;
    const nats = d.mac.spawn("nats", ["/usr/sbin/nats-server", "-a", "0.0.0.0", "-p", String(natsPort)]);
    // An nft that may read but not write: a watcher without the right to insert its rules.
    const readOnlyNft = join(d.linux.runDir, "nft-read-only.sh");
    writeFileSync(
      readOnlyNft,
      '#!/bin/sh\nif [ "$1" = "-j" ] && [ "$2" = "list" ]; then exec nft "$@"; fi\necho "Error: Operation not permitted" >&2\nexit 1\n',
      { mode: 0o755 },
    );
    let watcher: ReturnType<typeof d.linux.spawn> | undefined;
    let watch: ReturnType<typeof d.mac.spawn> | undefined;
    let undo: (() => Promise<void>) | undefined;
    try {
      expect(
        await pollUntil(() => nats.output().includes("Server is ready"), { timeoutMs: 30_000 }),
        nats.output(),
      ).toBe(true);
      // Listening first, as a running sidecar is: a status is published when it changes (and only
      // every 30 s otherwise), so a subscriber that comes later misses the change.
      const argv = [
        ...d.checkArgv({ until: "data-plane", watchMs, intervalMs: 250 }),
        "--nats-url",
        `nats://127.0.0.1:${natsPort}`,
        "--nats-prefix",
        natsPrefix,
      ];
      watch = d.mac.spawn("nats-watch", argv, { cwd: repoRoot });
      expect(
        await pollUntil(() => parseCheckLines(watch!.output()).some((l) => l.report.usable), {
          timeoutMs: 120_000,
          intervalMs: 100,
        }),
        watch.output().slice(-2000),
      ).toBe(true);
      watcher = d.linux.spawn(
        "fw-watcher",
        [process.execPath, join(repoRoot, "bin/potluck-fw-watcher.mjs"), "--watch"],
        {
          cwd: repoRoot,
          env: {
            POTLUCK_FW_WATCH_INTERVAL: "1",
            POTLUCK_FW_PORT: "0",
            POTLUCK_MACHINE: "linux",
            POTLUCK_FW_NFT: readOnlyNft,
            POTLUCK_NATS_URL: `nats://${d.mac.underlayIp}:${natsPort}`,
            POTLUCK_NATS_PREFIX: natsPrefix,
          },
        },
      );
      expect(
        await pollUntil(() => watcher!.output().includes("publishing fw status on NATS"), { timeoutMs: 60_000 }),
        watcher.output(),
      ).toBe(true);
      undo = await d.lab.faults.mullvadKillswitch("linux");
      await watch.exited;
      const lines = parseCheckLines(watch.output());
      expect(lines.length, watch.output().slice(-2000)).toBeGreaterThan(0);
      const layer = expectNamed(last(lines), "data-plane", "firewall-drop", [
        "on linux, whose fw-watcher reports the potluck0 accept rules missing; its last reapply failed:",
        "sudo potluck-fw-watcher --install --interface potluck0",
      ]);
      expect(layer.fix).not.toContain("on mac");
      expect(layer.message).toContain("firewall likely blocking mesh traffic on potluck0");
      expect(layer.message).toContain(
        "the fw-watcher on linux reports the mullvad firewall present and missing: inet mullvad input iifname potluck0 accept",
      );
      expect(layer.offerFix).toBeUndefined();
    } finally {
      await watch?.stop();
      await watcher?.stop();
      await undo?.();
      await nats.stop();
    }
    await healthyAgain();
  });

  it("Tailscale CGNAT drop on linux: firewall likely blocking mesh traffic on potluck0", async () => {
    const undo = await d.lab.faults.tailscaleCgnatDrop("linux");
    try {
      const layer = expectNamed(last(await d.check({ until: "data-plane", watchMs })), "data-plane", "firewall-drop", [
        "on linux (its firewall drops the mesh",
        "nft insert rule ip filter ts-input iifname potluck0 accept",
      ]);
      expect(layer.message).toContain("firewall likely blocking mesh traffic on potluck0");
    } finally {
      await undo();
    }
    await healthyAgain();
  });

  it("MTU black hole: the small probe passes, the large one is lost", async () => {
    const undo = await d.lab.faults.mtuBlackhole("linux");
    try {
      const layer = expectNamed(last(await d.check({ until: "data-plane", watchMs })), "data-plane", "mtu-blackhole", [
        "ip link set dev potluck0 mtu",
      ]);
      expect(layer.message).toContain("1400-byte probe was lost");
    } finally {
      await undo();
    }
    await healthyAgain();
  });

  it("MTU black hole under a running watch: the first check that starts after the fault names MTU, never a firewall", async () => {
    // Checks back to back, as a dashboard and a router produce them: the fault lands while probes
    // and their connections are in flight, which is when a reused connection used to carry a
    // black-holed large segment ahead of the small probe and make it time out too.
    const watch = d.mac.spawn("mtu-watch", d.checkArgv({ watchMs, intervalMs: 25, until: "data-plane" }), {
      cwd: repoRoot,
    });
    let undo: (() => Promise<void>) | undefined;
    try {
      const warm = await pollUntil(() => parseCheckLines(watch.output()).filter((l) => l.report.usable).length >= 3, {
        timeoutMs: 120_000,
        intervalMs: 50,
      });
      expect(warm, watch.output().slice(-2000)).toBe(true);
      undo = await d.lab.faults.mtuBlackhole("linux");
      const faultAt = Date.now();
      await watch.exited;
      const dataPlane = (l: CheckLine) => l.report.layers.find((layer) => layer.code === "data-plane")!;
      // Reports whose check began once the fault was in place.
      const after = parseCheckLines(watch.output()).filter((l) => l.atMs - l.durationMs >= faultAt);
      expect(after.length, watch.output().slice(-2000)).toBeGreaterThan(0);
      expect(dataPlane(after[0]!), JSON.stringify(after[0]!.report.layers, null, 1)).toMatchObject({
        failure: "mtu-blackhole",
      });
      for (const line of after) expect(dataPlane(line).failure, JSON.stringify(dataPlane(line))).toBe("mtu-blackhole");
      expectNamed(after.at(-1)!.report, "data-plane", "mtu-blackhole", ["ip link set dev potluck0 mtu"]);
    } finally {
      await watch.stop();
      await undo?.();
    }
    await healthyAgain();
  });

  it("MTU black hole seen through the sidecar: its first fresh check after the fault names MTU, never a firewall", async () => {
    // The sidecar's own probes share a process (and used to share a connection pool) with the
    // capabilities and first-token requests of every earlier check.
    const fresh = async () => {
      const startedAt = Date.now();
      const res = await d.mac.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/diagnostics/linux?fresh=1`], {
        timeoutMs: 60_000,
      });
      expect(res.code, res.stderr).toBe(0);
      return { startedAt, report: DiagnosticsReport.parse(JSON.parse(res.stdout)) };
    };
    for (let i = 0; i < 3; i++) expect((await fresh()).report.usable).toBe(true);
    const undo = await d.lab.faults.mtuBlackhole("linux");
    const faultAt = Date.now();
    try {
      const seen: DiagnosticsReport[] = [];
      const deadline = faultAt + watchMs;
      while (Date.now() < deadline) {
        const { startedAt, report } = await fresh();
        if (startedAt < faultAt) continue;
        seen.push(report);
        if (report.layers.find((l) => l.code === "data-plane")?.status === "failed") break;
      }
      const failures = seen.map((r) => r.layers.find((l) => l.code === "data-plane")?.failure ?? "none");
      expect(failures.length).toBeGreaterThan(0);
      expect(failures, JSON.stringify(seen[0]?.layers, null, 1)).toEqual(failures.map(() => "mtu-blackhole"));
      expectNamed(seen.at(-1)!, "data-plane", "mtu-blackhole", ["ip link set dev potluck0 mtu"]);
    } finally {
      await undo();
    }
    await healthyAgain();
  });

  it("peer sidecar stopped: connection refused on linux's mesh address", async () => {
    await d.lab.faults.stopProcesses("linux");
    try {
      const layer = expectNamed(
        last(await d.check({ until: "data-plane", watchMs })),
        "data-plane",
        "connection-refused",
        ["start the sidecar on linux"],
      );
      expect(layer.message).toContain(`nothing listens on ${d.linux.meshIp}:8321`);
    } finally {
      await d.startSidecar(d.linux);
    }
    await healthyAgain();
  });

  it("a VPN reconnect the fw-watcher repairs within its tick never shows as a failure", async () => {
    const undo = await d.lab.faults.mullvadKillswitch("linux");
    const watcher = d.linux.spawn(
      "fw-watcher",
      [process.execPath, join(repoRoot, "bin/potluck-fw-watcher.mjs"), "--watch"],
      {
        cwd: repoRoot,
        env: {
          POTLUCK_FW_WATCH_INTERVAL: "1",
          POTLUCK_FW_PORT: "0",
          POTLUCK_MACHINE: "linux",
          POTLUCK_NATS_PREFIX: `t${Date.now().toString(36)}`,
        },
      },
    );
    const reapplied = () =>
      watcher
        .output()
        .split("\n")
        .filter((l) => l.includes("accept rule(s) reapplied")).length;
    try {
      expect(await pollUntil(() => reapplied() >= 1, { timeoutMs: 60_000 }), watcher.output()).toBe(true);
      const watching = d.check({ watchMs: 20_000, intervalMs: 250 });
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 4_000));
        await d.lab.faults.vpnReconnect("linux", "mullvad");
      }
      const lines = await watching;
      expect(reapplied()).toBeGreaterThanOrEqual(2);
      expect(lines.length).toBeGreaterThan(5);
      for (const { report } of lines)
        expect(
          report.layers.filter((l) => l.status === "failed"),
          JSON.stringify(report.layers),
        ).toEqual([]);
    } finally {
      await watcher.stop();
      await undo();
    }
    await healthyAgain();
  });

  it("Mullvad killswitch on this machine: the reapply is offered, refused without consent, and heals the path with it", async () => {
    const watcher = d.mac.spawn(
      "fw-watcher",
      [process.execPath, join(repoRoot, "bin/potluck-fw-watcher.mjs"), "--watch"],
      {
        // A long tick: only the consented reapply may repair the rules in this scenario.
        cwd: repoRoot,
        env: {
          POTLUCK_FW_WATCH_INTERVAL: "3600",
          POTLUCK_MACHINE: "mac",
          POTLUCK_NATS_PREFIX: `t${Date.now().toString(36)}`,
        },
      },
    );
    let undo: (() => Promise<void>) | undefined;
    try {
      expect(
        await pollUntil(() => watcher.output().includes("fw-watcher listening"), { timeoutMs: 60_000 }),
        watcher.output(),
      ).toBe(true);
      undo = await d.lab.faults.mullvadKillswitch("mac");
      let report: DiagnosticsReport | undefined;
      const named = await pollUntil(
        async () => {
          const res = await d.mac.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/diagnostics/linux?fresh=1`], {
            timeoutMs: 60_000,
          });
          report = res.code === 0 ? DiagnosticsReport.parse(JSON.parse(res.stdout)) : undefined;
          return report?.firstFailure === "data-plane";
        },
        { timeoutMs: watchMs, intervalMs: 1_000 },
      );
      expect(named, JSON.stringify(report?.layers, null, 1)).toBe(true);
      const layer = expectNamed(report!, "data-plane", "firewall-drop", [
        "accept rules on mac:",
        "sudo potluck-fw-watcher --install --interface potluck0",
      ]);
      expect(layer.message).toContain("never entered potluck0 on mac");
      expect(layer.offerFix).toBe("fw-reapply");

      const noConsent = await d.mac.exec([
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        '{"action":"fw-reapply"}',
        `http://127.0.0.1:${sidecarPort}/diagnostics/fix`,
      ]);
      expect(noConsent.stdout).toBe("400");
      expect(watcher.output()).not.toContain("reapply requested");

      const fixed = await doctor(["linux", "--fix", "--yes"]);
      expect(fixed.stderr).toMatch(/fw-watcher inserted [1-9]\d* rule\(s\); rules intact/);
      expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
      expect(fixed.stdout).toMatch(/mac → linux \[[^\]]+\]: can serve a prompt/);
      expect(watcher.output()).toContain("reapply requested");
    } finally {
      await watcher.stop();
      await undo?.();
    }
    await healthyAgain();
  });

  it("peer powered off: the tunnel fails even though the last handshake is recent", async () => {
    const undo = await d.lab.faults.powerOff("linux");
    try {
      const report = last(await d.check({ until: "tunnel", watchMs }));
      const layer = expectNamed(report, "tunnel", report.layers[3]?.failure ?? "", ["power on linux"]);
      expect(["peer-silent", "no-handshake"]).toContain(layer.failure);
      expect(layer.message).toContain("powered off");
    } finally {
      await undo();
      await d.startSidecar(d.linux);
    }
    await healthyAgain();
  });

  it("model still loading: the runtime is not ready yet, and the first token is suppressed", async () => {
    // A named pipe nobody writes to: the runtime starts reading the model file and waits, as it
    // would on a slow disk, so the model stays "loading" for as long as the scenario needs.
    const fifo = join(d.linux.runDir, "still-loading.gguf");
    const made = await d.linux.exec(["mkfifo", fifo]);
    expect(made.code, made.stderr).toBe(0);
    await d.lab.faults.stopProcesses("linux");
    await d.startSidecar(d.linux, { POTLUCK_MODELS: fifo });
    // Models load on first use: a prompt on linux starts the load, which then waits on the pipe.
    const prompt = JSON.stringify({
      model: "still-loading",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 1,
    });
    const loading = d.linux.exec(
      [
        "curl",
        "-s",
        "-m",
        "100",
        "-H",
        "content-type: application/json",
        "-d",
        prompt,
        `http://127.0.0.1:${sidecarPort}/v1/chat/completions`,
      ],
      { timeoutMs: 110_000 },
    );
    void loading.catch(() => undefined);
    try {
      const layer = expectNamed(
        last(await d.check({ until: "model-runtime", watchMs })),
        "model-runtime",
        "model-loading",
        ["wait for still-loading to finish loading on linux"],
      );
      expect(layer.message).toContain("model runtime not ready: still-loading is still loading on linux");
    } finally {
      await d.lab.faults.stopProcesses("linux");
      await d.startSidecar(d.linux);
    }
    await healthyAgain();
  });

  it("model failed to load: the runtime's own reason, and the first token suppressed", async () => {
    const broken = join(d.linux.runDir, "broken.gguf");
    writeFileSync(broken, "this is not a GGUF file\n".repeat(64));
    await d.lab.faults.stopProcesses("linux");
    await d.startSidecar(d.linux, { POTLUCK_MODELS: broken });
    try {
      const layer = expectNamed(
        last(await d.check({ until: "model-runtime", watchMs })),
        "model-runtime",
        "model-failed",
        ["systemctl restart potluck-sidecar"],
      );
      expect(layer.message).toMatch(/did not load on linux: .+/);
      expect(layer.message).not.toContain("no reason given");
    } finally {
      await d.lab.faults.stopProcesses("linux");
      await d.startSidecar(d.linux);
    }
    await healthyAgain();
  });
});
