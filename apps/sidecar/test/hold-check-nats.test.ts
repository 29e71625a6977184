import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ensureUsageStream } from "@potluck/service";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { natsHoldChecker } from "../src/usage/nats.js";
import type { HoldClaim } from "../src/usage/hold-check.js";

// The serving side's hold reader on a real nats-server whose JetStream is not answering when the
// sidecar connects (a cluster without a meta leader yet, or a server started without -js), then
// is: the reader must neither crash the process nor stay broken once JetStream answers.
const port = 30_000 + Math.floor(Math.random() * 20_000);
const prefix = `t${process.pid}x${port}`;
const storeDir = mkdtempSync(join(tmpdir(), "potluck-hold-nats-"));
const claim: HoldClaim = {
  eventId: "job-1:hold",
  seq: 99,
  jobId: "job-1",
  caller: "mac",
  callerOwner: "home",
  payee: "eve",
};
let server: ChildProcess | undefined;
let nc: NatsConnection;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  await startServer([]);
  nc = await connect({ servers: `127.0.0.1:${port}`, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
});

afterEach(() => expect(unhandled).toEqual([]));

afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await nc?.close();
  await stopServer();
  rmSync(storeDir, { recursive: true, force: true });
});

describe("natsHoldChecker", () => {
  it("answers 503 while JetStream is not there, and reads holds once it is", async () => {
    const checker = natsHoldChecker({ nats: nc, prefix, lookupKey: async () => undefined });
    // Long enough for a JetStream API request made at creation to have failed.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await checker.check(claim)).toMatchObject({ ok: false, status: 503, code: "hold_unverifiable" });

    await stopServer();
    await startServer(["-js", "-sd", storeDir]);
    await until(
      async () =>
        await ensureUsageStream(nc, prefix, { replicas: 1 }).then(
          () => true,
          () => false,
        ),
    );
    const verdict = await checker.check(claim);
    expect(verdict).toMatchObject({ ok: false, status: 402, code: "hold_not_found" });
    expect(verdict.ok === false && verdict.message).toMatch(/no hold at sequence 99/);
  }, 60_000);
});

async function startServer(extra: string[]): Promise<void> {
  server = spawn("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", String(port), ...extra], { stdio: "ignore" });
  await until(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = netConnect({ host: "127.0.0.1", port });
        socket.once("connect", () => (socket.destroy(), resolve(true)));
        socket.once("error", () => resolve(false));
      }),
  );
}

async function stopServer(): Promise<void> {
  const proc = server;
  server = undefined;
  if (proc === undefined || proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGKILL");
  await exited;
}

async function until(probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 200));
  }
}
