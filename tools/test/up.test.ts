import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsConnectOptions, subjectsFor } from "@potluck/protocol";
import { allowedCpus, threadCpus } from "@potluck/sidecar";
import { afterAll, describe, expect, it } from "vitest";
import { httpOk, natsDemandsAuth } from "../src/lib/net.js";
import { repoRoot } from "../src/lib/repo.js";
import { waitFor } from "../src/lib/supervisor.js";

// `potluck up` for real: the child services start, the sidecar answers /health, and Ctrl-C
// (SIGINT) stops every process it started. Ports are offset so a developer's own stack is untouched.
// NATS too: nothing answers on the URL's port, so `up` starts its own nats-server, and the URL
// carries a token, which that server then demands of every client.
const dataDir = mkdtempSync(join(tmpdir(), "potluck-up-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childPids(pid: number): number[] {
  // /proc is enough on Linux; the test only needs direct children of `potluck up`.

  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** A process's environment, one VAR=value per entry. */
function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
}

describe("potluck up", () => {
  it("answers /health on the sidecar, restarts a service that dies, and leaves nothing behind after Ctrl-C", async () => {
    const port = 18321 + Math.floor(Math.random() * 500);
    const natsPort = port + 2000;
    const token = randomBytes(12).toString("hex");
    const natsUrl = `nats://${token}@127.0.0.1:${natsPort}`;
    const prefix = `t${randomBytes(4).toString("hex")}`;
    const up = spawn(
      process.execPath,
      [join(repoRoot, "bin/potluck.mjs"), "up", "--port", String(port), "--no-fw-watcher"],
      {
        env: {
          ...process.env,
          POTLUCK_DATA_DIR: dataDir,
          POTLUCK_COORDINATOR_PORT: String(port + 1000),
          POTLUCK_LEDGER_PORT: String(port + 1001),
          POTLUCK_NATS_URL: natsUrl,
          POTLUCK_NATS_PREFIX: prefix,
          // Port 11434 belongs to the machine's own Ollama (or Potluck), not to a test.
          POTLUCK_OLLAMA_PORT: "0",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    up.stdout.on("data", (d: Buffer) => (output += d.toString()));
    up.stderr.on("data", (d: Buffer) => (output += d.toString()));
    try {
      const healthy = await waitFor(() => httpOk(`http://127.0.0.1:${port}/health`), { timeoutMs: 90_000 });
      expect(healthy, output).toBe(true);
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBe(200);
      expect(await waitFor(async () => output.includes("potluck: up"), { timeoutMs: 120_000 }), output).toBe(true);
      // The NATS that `up` started refuses a client without the token; the token is nowhere on a
      // command line; the ledger got in with it (it created its usage stream there).
      await expect(connect({ servers: `nats://127.0.0.1:${natsPort}`, reconnect: false })).rejects.toThrow(
        /authorization/i,
      );
      const natsPid = childPids(up.pid ?? -1).find((pid) =>
        readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("nats-server"),
      );
      expect(natsPid, output).toBeDefined();
      for (const pid of [up.pid ?? -1, ...childPids(up.pid ?? -1)])
        expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).not.toContain(token);
      expect(output).not.toContain(token);
      // What `up --hub` reads to warn that an already running NATS ignores the URL's secret.
      expect(await natsDemandsAuth("127.0.0.1", natsPort)).toBe(true);
      expect(await natsDemandsAuth("127.0.0.1", 4222)).toBe(false); // the machine's own, open NATS (the tests' precondition)
      expect(await natsDemandsAuth("127.0.0.1", port, 500)).toBeUndefined(); // the sidecar: HTTP, no NATS greeting
      const nc = await connect({ ...natsConnectOptions(natsUrl), reconnect: false });
      try {
        const jsm = await jetstreamManager(nc);
        const streamMade = await waitFor(
          () =>
            jsm.streams.info(subjectsFor(prefix).usageStream.name).then(
              () => true,
              () => false,
            ),
          { timeoutMs: 60_000 },
        );
        expect(streamMade, output).toBe(true);
      } finally {
        await nc.close();
      }
      // A service that dies on its own is started again, like systemd's Restart=on-failure.
      const ledger = childPids(up.pid ?? -1).find((pid) =>
        readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("apps/ledger"),
      );
      expect(ledger, output).toBeDefined();
      // The ledger checks who signed each usage event against the roster of the coordinator
      // beside it; the sidecar is not told of it (for a sidecar that would mean "joined").
      const coordinatorUrl = `POTLUCK_COORDINATOR_URL=http://127.0.0.1:${port + 1000}`;
      expect(environOf(ledger ?? -1)).toContain(coordinatorUrl);
      expect(output).not.toMatch(/applied without checking who signed them/);
      process.kill(ledger ?? -1, "SIGKILL");
      expect(
        await waitFor(async () => /ledger exited \(SIGKILL\); restarting it/.test(output), { timeoutMs: 30_000 }),
        output,
      ).toBe(true);
      expect(await waitFor(() => httpOk(`http://127.0.0.1:${port + 1001}/health`), { timeoutMs: 90_000 }), output).toBe(
        true,
      );
      // With no model configured it serves the tiny model on one thread (cores − 1 here), so it keeps
      // every one of its threads on one CPU (POTLUCK_CPU_PIN=auto).
      if (availableParallelism() === 2) {
        const sidecar = childPids(up.pid ?? -1).find((pid) =>
          readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("apps/sidecar"),
        );
        expect(sidecar, output).toBeDefined();
        expect(environOf(sidecar ?? -1).some((v) => v.startsWith("POTLUCK_COORDINATOR_URL="))).toBe(false);
        expect(output).toMatch(/pinned to one CPU/);
        const lists = threadCpus(sidecar!).map((cpus) => cpus.join(","));
        expect(lists.length).toBeGreaterThan(1);
        expect(new Set(lists)).toEqual(new Set([String(allowedCpus().at(-1))]));
      }
      const children = childPids(up.pid ?? -1);
      expect(children.length, output).toBeGreaterThanOrEqual(3);
      expect(children).not.toContain(ledger);
      const exited = new Promise<number | null>((resolve) => up.once("exit", resolve));
      up.kill("SIGINT");
      expect(await exited, output).toBe(0);
      const gone = await waitFor(async () => children.every((pid) => !alive(pid)), { timeoutMs: 15_000 });
      expect(gone, `still running: ${children.filter(alive).join(", ")}`).toBe(true);
    } finally {
      if (up.exitCode === null) up.kill("SIGKILL");
    }
  });
});
