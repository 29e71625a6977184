import { tmpdir } from "node:os";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { dirname } from "node:path";
import { Roster } from "@potluck/protocol";
import { afterAll, describe, expect, it } from "vitest";
import { labLeftovers, newLabId, ownerAlive, pollUntil, readState } from "../src/lab/index.js";
import { runBin } from "./helpers/bin.js";

// `potluck lab up --cluster` as a user runs it: a detached owner holds a community on a NATS
// cluster (three nats-servers, two coordinators, two ledgers, a private PostgreSQL, households of
// simulated machines heartbeating) until `potluck lab down`. Every step is a separate run of the
// real bin, seconds after `up` has returned, the way a user would type them.
const id = newLabId();
/** The owner allows 600 s for the cluster (the cluster suite's bound); `up` itself a little more. */
const upTimeoutMs = 660_000;
/** `down` waits up to 90 s for the owner, then forces; each run starts tsx on a loaded machine. */
const downTimeoutMs = 180_000;
const cliTimeoutMs = 120_000;
/** Long enough for an owner whose event loop has emptied to have exited and torn its lab down. */
const settleMs = 4_000;
/** Right after start-up a follower may still be catching up: `doctor --hub` is asked again within this. */
const healthyWithinMs = 90_000;
/** More than one heartbeat interval (5 s): a living machine's lastHeartbeatAt moves on across it. */
const beatGapMs = 7_000;
const households = { "home-a": "home", "home-b": "home", "guest-a": "guest" } as const;

// From the temp directory, not the repo: a user's shell is anywhere (a lab started elsewhere once
// failed to find tsx for its services).
const potluck = (timeoutMs: number, ...args: string[]) => runBin("potluck.mjs", args, timeoutMs, process.env, tmpdir());

afterAll(async () => {
  // Whatever happened above, leave nothing behind: only this test's lab, by its id.
  if (readState(id) !== null) await potluck(downTimeoutMs, "lab", "down", "--id", id);
  const state = readState(id);
  if (state !== null && ownerAlive(state)) process.kill(state.ownerPid, "SIGTERM");
  await pollUntil(() => labLeftovers(id).length === 0, { timeoutMs: 30_000 });
}, downTimeoutMs + 60_000);

describe("potluck lab up --cluster", () => {
  it("refuses a --hosts name the cluster uses, naming the flag", async () => {
    const refused = await potluck(cliTimeoutMs, "lab", "up", "--cluster", "--hosts", "mac,n2", "--id", id);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--hosts: n2 is a host of --cluster/);
    expect(readState(id)).toBeNull();
  });

  it(
    "keeps a living community up until potluck lab down: status, doctor --hub and rosters seconds later",
    async () => {
      const upStarted = Date.now();
      const up = await potluck(upTimeoutMs, "lab", "up", "--cluster", "--id", id);
      const upMs = Date.now() - upStarted;
      expect(up, up.stderr).toMatchObject({ code: 0 });
      const state = readState(id);
      const cluster = state?.cluster;
      expect(cluster).toBeDefined();
      if (state === null || cluster === undefined) return;
      const pg = cluster.postgres;
      // What a user needs is printed: every NATS server, the prefix, each service's URL.
      expect(cluster.natsUrl.split(",")).toHaveLength(3);
      for (const text of [
        cluster.natsUrl,
        `prefix ${cluster.prefix}`,
        ...cluster.coordinatorUrls,
        ...cluster.ledgerUrls,
      ])
        expect(up.stdout).toContain(text);
      const health = /health: potluck (lab exec .*)$/m.exec(up.stdout)?.[1];
      expect(health, up.stdout).toBeDefined();

      await new Promise((resolve) => setTimeout(resolve, settleMs));

      // A separate process finds the same cluster through the state file.
      const status = await potluck(cliTimeoutMs, "lab", "status");
      expect(status.code).toBe(0);
      expect(status.stdout).toContain(`lab ${id} (potluck lab up): owner pid ${state.ownerPid}`);
      expect(status.stdout).toContain(`NATS ${cluster.natsUrl}  prefix ${cluster.prefix}`);
      for (const url of cluster.coordinatorUrls) {
        const line = status.stdout.split("\n").find((l) => l.includes(`roster at ${url}:`)) ?? "";
        for (const [name, owner] of Object.entries(households)) expect(line).toContain(`${name} (${owner}) online`);
      }

      // The printed command, pasted: doctor --hub from inside n1 with the hub's settings.
      let report = { code: -1, stdout: "", stderr: "" };
      const healthy = await pollUntil(
        async () => {
          report = await potluck(cliTimeoutMs, ...(health ?? "").split(" "), "--json");
          return report.code === 0;
        },
        { timeoutMs: healthyWithinMs, intervalMs: 2_000 },
      );
      expect(healthy, report.stdout + report.stderr).toBe(true);
      const checks = (JSON.parse(report.stdout) as { checks: { part: string; status: string; detail: string }[] })
        .checks;
      const servers = checks.filter((c) => c.part.startsWith("nats "));
      expect(servers.map((c) => [c.part, c.status])).toEqual(
        cluster.natsUrl.split(",").map((url) => [`nats ${url}`, "ok"]),
      );
      expect(checks.find((c) => c.part.startsWith("stream "))?.detail).toMatch(/replicas 3 of 3 current/);
      expect(checks.find((c) => c.part.startsWith("database "))?.status).toBe("ok");

      // Every coordinator lists the machines online, and they keep beating after `up` returned.
      const rosters = async () =>
        Promise.all(
          cluster.coordinatorUrls.map(async (url) =>
            Roster.parse(await (await fetch(`${url}/v1/roster`, { signal: AbortSignal.timeout(10_000) })).json()),
          ),
        );
      const before = await rosters();
      await new Promise((resolve) => setTimeout(resolve, beatGapMs));
      const after = await rosters();
      for (const [i, roster] of after.entries())
        for (const [name, owner] of Object.entries(households)) {
          const now = roster.machines.find((m) => m.name === name);
          const then = before[i]?.machines.find((m) => m.name === name);
          expect(now, `${cluster.coordinatorUrls[i]}: ${name}`).toMatchObject({ owner, state: "online" });
          expect(Date.parse(now?.lastHeartbeatAt ?? "")).toBeGreaterThan(Date.parse(then?.lastHeartbeatAt ?? ""));
        }

      const downStarted = Date.now();
      const down = await potluck(downTimeoutMs, "lab", "down", "--id", id);
      const downMs = Date.now() - downStarted;
      expect(down, down.stderr).toMatchObject({ code: 0 });
      expect(down.stdout).toContain(`lab ${id} stopped`);
      expect(readState(id)).toBeNull();
      expect(await pollUntil(() => labLeftovers(id).length === 0, { timeoutMs: 30_000 })).toBe(true);
      // The private PostgreSQL runs outside the lab's namespaces: its process and directory are gone too.
      expect(postgresPids(pg.dataDir)).toEqual([]);
      expect(await listening(pg.port)).toBe(false);
      expect(existsSync(dirname(pg.dataDir))).toBe(false);
      console.log(
        `lab up --cluster ${upMs} ms, lab down ${downMs} ms; load ${readFileSync("/proc/loadavg", "utf8").trim()}`,
      );
    },
    upTimeoutMs + downTimeoutMs + 4 * cliTimeoutMs,
  );
});

/** Processes whose command line names `dataDir` (a postmaster and its children do). */
function postgresPids(dataDir: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(dataDir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Whether anything accepts TCP connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port, timeout: 5_000 });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
  });
}
