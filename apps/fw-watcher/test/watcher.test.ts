import { connect } from "@nats-io/transport-node";
import { FwStatus, subjectsFor, type FwStatus as Status } from "@potluck/protocol";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Firewall } from "../src/firewall.js";
import { createMetrics } from "../src/metrics.js";
import type { NftRunner } from "../src/nft/runner.js";
import { StatusPublisher } from "../src/publisher.js";
import { FwWatcher, WatcherBusyError, type WatchLog } from "../src/watcher.js";
import { createNetns, mullvadTable, ownRules, tailscaleTable, type TestNetns } from "./netns.js";

/** A logger that keeps every line, so tests assert on what was logged. */
function recorder(): WatchLog & { lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

async function until(probe: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const clean of cleanups.reverse()) await clean().catch(() => undefined);
  cleanups.length = 0;
});

async function netns(label: string, ...scripts: string[]): Promise<TestNetns> {
  const ns = await createNetns(label);
  cleanups.push(() => ns.remove());
  for (const script of scripts) await ns.load(script);
  return ns;
}

function startWatcher(
  nft: NftRunner,
  opts: { intervalMs?: number; onStatus?: (s: Status, changed: boolean) => void } = {},
) {
  const log = recorder();
  const watcher = new FwWatcher({
    firewall: new Firewall(nft, "potluck0"),
    machine: "linux",
    log,
    intervalMs: opts.intervalMs ?? 1000,
    onStatus: opts.onStatus,
  });
  watcher.start();
  cleanups.push(() => watcher.stop());
  return { watcher, log };
}

const missingLogged = (log: ReturnType<typeof recorder>) =>
  log.lines.filter((l) => l.msg === "accept rule(s) missing; reapplying").length;

describe("watch mode", () => {
  it("puts the rules back after a VPN reconnect recreates the Mullvad table, and logs and counts the reapply", async () => {
    const ns = await netns("recon", mullvadTable, tailscaleTable);
    const { watcher, log } = startWatcher(ns.nft, { intervalMs: 1000 });
    await until(() => watcher.status().reapplyCount === 1 && watcher.status().intact);
    expect((await ownRules(ns)).length).toBe(3);

    // The reconnect: the VPN client deletes its table and creates it afresh, without our rules.
    await ns.load(`delete table inet mullvad\n${mullvadTable}`);
    expect((await ownRules(ns)).length).toBe(1);
    // Generous deadline; the goal (interval + 1 s) is measured by the bench, not asserted here.
    await until(() => watcher.status().reapplyCount === 2, 30_000);
    expect((await ownRules(ns)).length).toBe(3);
    expect(missingLogged(log)).toBe(2);
    const status = FwStatus.parse(watcher.status());
    expect(status).toMatchObject({
      intact: true,
      reapplyCount: 2,
      lastError: null,
      vpns: { tailscale: true, mullvad: true },
    });
    expect(status.lastReapplyAt).not.toBeNull();
  });

  it("logs an nft error, keeps it in the status, and recovers on a later tick without exiting", async () => {
    const ns = await netns("flaky", mullvadTable);
    let failures = 3;
    const flaky: NftRunner = async (args) =>
      failures-- > 0
        ? { code: 1, stdout: "", stderr: "Error: Could not process rule: Device or resource busy" }
        : ns.nft(args);
    const { watcher, log } = startWatcher(flaky, { intervalMs: 200 });
    await until(() => log.lines.some((l) => l.msg === "reapply hit an error; will retry on next tick"));
    expect(watcher.status().lastError).toMatch(/Device or resource busy/);
    await until(() => watcher.status().intact && watcher.status().lastError === null);
    expect(log.lines.filter((l) => l.level === "error").length).toBe(3);
    expect((await ownRules(ns)).length).toBe(2);
  });

  it("says there is nothing to do when no VPN is present, and changes nothing", async () => {
    const ns = await netns("idle");
    const before = await ns.rulesetJson();
    const { watcher, log } = startWatcher(ns.nft, { intervalMs: 200 });
    await until(() => log.lines.some((l) => /no VPN firewall found.*nothing to do/.test(l.msg)));
    await until(() => watcher.status().checkedAt !== undefined && watcher.status().rules.length === 3);
    expect(watcher.status()).toMatchObject({
      intact: true,
      reapplyCount: 0,
      vpns: { tailscale: false, mullvad: false },
    });
    expect(await ns.rulesetJson()).toBe(before);
  });

  it("serialises a requested reapply with ticks (no duplicate rules) and counts it", async () => {
    const ns = await netns("req", mullvadTable);
    const { watcher } = startWatcher(ns.nft, { intervalMs: 100 });
    await until(() => watcher.status().intact);
    for (let i = 0; i < 5; i++) {
      await ns.load(`delete table inet mullvad\n${mullvadTable}`);
      await Promise.all([watcher.reapply("test"), watcher.reapply("test"), watcher.tick()]);
      expect((await ownRules(ns)).length).toBe(2);
    }
    expect(watcher.status().reapplyCount).toBe(6);
  });

  it("refuses a flood of requested reapplies beyond its bound, and keeps watching", async () => {
    const ns = await netns("flood", mullvadTable);
    const { watcher } = startWatcher(ns.nft, { intervalMs: 200 });
    await until(() => watcher.status().intact);
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => watcher.reapply("flood")));
    const refused = results.filter((r) => r.status === "rejected");
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(WatcherBusyError);
    await ns.load(`delete table inet mullvad\n${mullvadTable}`);
    await until(() => watcher.status().reapplyCount === 2);
    expect((await ownRules(ns)).length).toBe(2);
  });

  it("publishes the status on NATS under its subject root, and metrics follow it", async () => {
    const ns = await netns("nats", mullvadTable);
    const root = `t${randomBytes(5).toString("hex")}`;
    const nc = await connect({ servers: "nats://127.0.0.1:4222" });
    cleanups.push(() => nc.drain());
    const received: Status[] = [];
    const sub = nc.subscribe(subjectsFor(root).fwStatus("linux"));
    void (async () => {
      for await (const msg of sub) received.push(FwStatus.parse(msg.json()));
    })();
    await nc.flush();
    const log = recorder();
    const publisher = new StatusPublisher({ subjectRoot: root, machine: "linux", log, periodicMs: 60_000 });
    cleanups.push(() => publisher.close());
    publisher.attach(nc);
    const metrics = createMetrics();
    const { watcher } = startWatcher(ns.nft, {
      intervalMs: 200,
      onStatus: (s, changed) => {
        metrics.observe(s);
        publisher.offer(s, changed);
      },
    });
    await until(() => received.some((s) => s.intact && s.reapplyCount === 1));
    // Unchanged ticks inside the periodic window publish nothing more.
    const seen = received.length;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(received.length).toBe(seen);
    await ns.load(`delete table inet mullvad\n${mullvadTable}`);
    await until(() => received.some((s) => s.reapplyCount === 2));
    expect(watcher.status().reapplyCount).toBe(2);
    expect(await metrics.registry.getSingleMetricAsString("potluck_fw_reapply_total")).toMatch(
      /potluck_fw_reapply_total 2/,
    );
  });
});
