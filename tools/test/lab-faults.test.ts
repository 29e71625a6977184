import { describe, expect, it } from "vitest";
import {
  createLab,
  httpFrom,
  type Lab,
  labLeftovers,
  type LabProcess,
  pollUntil,
  serveHttp,
} from "../src/lab/index.js";

// Every fault injector reproduces its symptom for real, and undoing it restores HTTP.
// Symptoms are asserted against a control taken just before the fault, never against a clock.
// Each fault gets its own lab (one comes up in well under a second), so they run concurrently.
const port = 8080;
/** A blocked request is given this long; successes are polled, so only failures are single shots. */
const blockedMs = 4_000;
/** Recovery and new handshakes are polled with a deadline generous enough for a loaded machine. */
const recoverMs = 60_000;
const freshS = 180;
/** How long a powered-off peer must stay without a handshake: several WireGuard retries (5 s each). */
const noHandshakeWatchMs = 12_000;

interface Fixture {
  lab: Lab;
  /** linux's HTTP server on its mesh IP; replaced by restartServer(). */
  server: LabProcess;
  url: string;
  restartServer(): Promise<void>;
  get(from: string, target?: string): ReturnType<typeof httpFrom>;
  post(from: string, target: string, bodyBytes: number): ReturnType<typeof httpFrom>;
  recovers(probe: () => Promise<{ ok: boolean }>): Promise<boolean>;
  expectOk(probe: () => Promise<{ ok: boolean }>): Promise<void>;
  /** Forces `from` to make a brand-new handshake with `to`, and reports whether one completes. */
  newHandshake(from: string, to: string): Promise<boolean>;
  exec(host: string, argv: string[]): Promise<string>;
}

/** A three-host lab with an HTTP server on linux, torn down (and proven gone) after `body`. */
async function withFaultLab(body: (f: Fixture) => Promise<void>): Promise<void> {
  const lab = await createLab();
  try {
    const recovers = (probe: () => Promise<{ ok: boolean }>) =>
      pollUntil(async () => (await probe()).ok, { timeoutMs: recoverMs, intervalMs: 500 });
    const f: Fixture = {
      lab,
      server: await serveHttp(lab.host("linux"), port),
      url: `http://${lab.host("linux").meshIp}:${port}/`,
      async restartServer() {
        f.server = await serveHttp(lab.host("linux"), port);
      },
      get: (from, target = f.url) => httpFrom(lab.host(from), target, { timeoutMs: blockedMs }),
      post: (from, target, bodyBytes) => httpFrom(lab.host(from), target, { bodyBytes, timeoutMs: blockedMs }),
      recovers,
      async expectOk(probe) {
        expect(await recovers(probe)).toBe(true);
      },
      async newHandshake(from, to) {
        await lab.rehandshake(from);
        return pollUntil(async () => (await lab.handshakeAgeS(from, to)) !== null, {
          timeoutMs: recoverMs,
          intervalMs: 250,
        });
      },
      async exec(host, argv) {
        const result = await lab.host(host).exec(argv);
        expect(result.code, `${argv.join(" ")}: ${result.stderr}`).toBe(0);
        return result.stdout;
      },
    };
    await body(f);
  } finally {
    await lab.teardown();
    expect(labLeftovers(lab.id)).toEqual([]);
  }
}

describe.concurrent("lab faults", () => {
  it("Mullvad killswitch: handshakes stay fresh, HTTP over potluck0 times out; reconnect drops exceptions; undo restores", () =>
    withFaultLab(async ({ lab, get, post, exec, newHandshake, recovers, expectOk, url, ...f }) => {
      await expectOk(() => get("mac"));
      const undo = await lab.faults.mullvadKillswitch("linux");
      const table = await exec("linux", ["nft", "list", "table", "inet", "mullvad"]);
      expect(table).toMatch(/chain input \{[^}]*policy drop/);
      expect(table).toMatch(/chain output \{[^}]*policy drop/);
      expect(await newHandshake("mac", "linux")).toBe(true);
      expect(await lab.handshakeAgeS("linux", "mac")).toBeLessThan(freshS);
      expect(await get("mac")).toMatchObject({ ok: false, code: "TIMEOUT" });
      // The LAN itself is allowed: the same server answers on linux's underlay address.
      await expectOk(() => get("mac", `http://${lab.host("linux").underlayIp}:${port}/`));

      // The exception a user (or fw-watcher) adds works — until the VPN reconnects and recreates its table.
      await exec("linux", ["nft", "insert", "rule", "inet", "mullvad", "input", "iifname", "potluck0", "accept"]);
      await exec("linux", ["nft", "insert", "rule", "inet", "mullvad", "output", "oifname", "potluck0", "accept"]);
      expect(await recovers(() => get("mac"))).toBe(true);
      await lab.faults.vpnReconnect("linux", "mullvad");
      expect(await exec("linux", ["nft", "list", "table", "inet", "mullvad"])).not.toContain("potluck0");
      expect(await get("mac")).toMatchObject({ ok: false, code: "TIMEOUT" });

      await undo();
      expect(await recovers(() => get("mac"))).toBe(true);
      expect((await lab.host("linux").exec(["nft", "list", "table", "inet", "mullvad"])).code).not.toBe(0);
    }));

  it("Tailscale CGNAT drop: 100.64/10 sources on potluck0 are dropped while handshakes stay fresh; reconnect drops exceptions; undo restores", () =>
    withFaultLab(async ({ lab, get, post, exec, newHandshake, recovers, expectOk, url, ...f }) => {
      await expectOk(() => get("windows"));
      const undo = await lab.faults.tailscaleCgnatDrop("linux");
      const table = await exec("linux", ["nft", "list", "table", "ip", "filter"]);
      expect(table).toContain("chain ts-input");
      expect(table).toMatch(/jump ts-input/);
      expect(await newHandshake("windows", "linux")).toBe(true);
      expect(await get("windows")).toMatchObject({ ok: false, code: "TIMEOUT" });
      expect(await get("mac")).toMatchObject({ ok: false, code: "TIMEOUT" });
      // Only mesh sources are hit: the underlay path to the same server still answers.
      await expectOk(() => get("windows", `http://${lab.host("linux").underlayIp}:${port}/`));

      await exec("linux", ["nft", "insert", "rule", "ip", "filter", "ts-input", "iifname", "potluck0", "accept"]);
      expect(await recovers(() => get("windows"))).toBe(true);
      await lab.faults.vpnReconnect("linux", "tailscale");
      expect(await exec("linux", ["nft", "list", "table", "ip", "filter"])).not.toContain("potluck0");
      expect(await get("windows")).toMatchObject({ ok: false, code: "TIMEOUT" });

      await undo();
      expect(await recovers(() => get("windows"))).toBe(true);
    }));

  it("MTU black hole: small HTTP works, a ≥1400-byte body is lost in both directions; undo restores", () =>
    withFaultLab(async ({ lab, get, post, exec, newHandshake, recovers, expectOk, url, ...f }) => {
      // A server on mac too, so a large POST can go linux → mac as well as mac → linux.
      const macServer = await serveHttp(lab.host("mac"), port, "http-mac");
      const macUrl = `http://${lab.host("mac").meshIp}:${port}/`;
      try {
        await expectOk(() => post("mac", url, 1400));
        await expectOk(() => post("linux", macUrl, 1400));
        const undo = await lab.faults.mtuBlackhole("linux");
        expect(await newHandshake("mac", "linux")).toBe(true);
        await expectOk(() => get("mac"));
        await expectOk(() => post("mac", url, 100));
        expect(await post("mac", url, 1400)).toMatchObject({ ok: false, code: "TIMEOUT" });
        expect(await post("linux", macUrl, 1400)).toMatchObject({ ok: false, code: "TIMEOUT" });
        expect(await get("mac", `${url}bytes/4000`)).toMatchObject({ ok: false, code: "TIMEOUT" });
        // Hosts whose links are untouched are unaffected.
        await expectOk(() => post("windows", macUrl, 1400));
        await undo();
        expect(await recovers(() => post("mac", url, 1400))).toBe(true);
        expect(await recovers(() => post("linux", macUrl, 1400))).toBe(true);
      } finally {
        await macServer.stop();
      }
    }));

  it("stopped process: connection refused while the host answers ping and handshakes", () =>
    withFaultLab(async ({ lab, get, post, exec, newHandshake, recovers, expectOk, url, ...f }) => {
      await expectOk(() => get("mac"));
      const undo = await lab.faults.stopProcesses("linux");
      expect(await get("mac")).toMatchObject({ ok: false, code: "ECONNREFUSED" });
      await exec("mac", ["ping", "-c", "1", "-W", "5", lab.host("linux").meshIp as string]);
      expect(await newHandshake("mac", "linux")).toBe(true);
      await undo();
      await f.restartServer();
      expect(await recovers(() => get("mac"))).toBe(true);
    }));

  it("powered-off peer: no handshake, no HTTP; power on brings the mesh and (restarted) service back", () =>
    withFaultLab(async ({ lab, get, post, exec, newHandshake, recovers, expectOk, url, ...f }) => {
      await expectOk(() => get("mac"));
      const undo = await lab.faults.powerOff("linux");
      expect(await f.server.exited).toBeDefined();
      expect(await lab.handshakeAgeS("linux", "mac")).toBeNull();
      await lab.rehandshake("mac");
      const handshook = await pollUntil(async () => (await lab.handshakeAgeS("mac", "linux")) !== null, {
        timeoutMs: noHandshakeWatchMs,
        intervalMs: 500,
      });
      expect(handshook).toBe(false);
      // The control: mac does handshake with the host that is still on, within the same kind of wait.
      expect(await newHandshake("mac", "windows")).toBe(true);
      expect((await get("mac")).ok).toBe(false);
      expect((await lab.host("mac").exec(["ping", "-c", "1", "-W", "2", lab.host("linux").underlayIp])).code).not.toBe(
        0,
      );

      await undo();
      expect(
        await pollUntil(async () => (await lab.handshakeAgeS("mac", "linux")) !== null, {
          timeoutMs: recoverMs,
          intervalMs: 250,
        }),
      ).toBe(true);
      await f.restartServer();
      expect(await recovers(() => get("mac"))).toBe(true);
    }));
});
