import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { connect as natsConnect } from "@nats-io/transport-node";
import { HeartbeatTiming, subjectsFor, type Roster } from "@potluck/protocol";
import { generateIdentity } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock.js";
import { loadCoordinatorConfig } from "../src/config.js";
import { startCoordinatorService, type CoordinatorService } from "../src/service.js";
import { adminSecret, createTestDatabase, publishHeartbeat, randomKey, tempDir } from "./support.js";

// The coordinator's own NATS outage with a real nats-server that this test stops and restarts:
// silence during the outage is not blamed on the machines, and after the reconnect they get the
// full timeout again. The coordinator's clock is injected, so the 5-minute outage takes no time.
const port = 30_000 + Math.floor(Math.random() * 20_000);
const natsUrl = `nats://127.0.0.1:${port}`;
const prefix = `t${randomBytes(5).toString("hex")}`;
const dir = tempDir("potluck-coord-reconnect-");
const clock = new ManualClock(Date.now());
let nats: ChildProcess | null = null;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let service: CoordinatorService;

const listening = () =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

async function until(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startNats(): Promise<void> {
  nats = spawn("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  await until(listening, "nats-server to listen");
}

async function stopNats(): Promise<void> {
  const proc = nats;
  nats = null;
  if (proc === null || proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGKILL");
  await exited;
}

beforeAll(async () => {
  await startNats();
  db = await createTestDatabase();
  const config = loadCoordinatorConfig(
    {
      POTLUCK_DATA_DIR: dir.path,
      DATABASE_URL: db.url,
      POTLUCK_NATS_URL: natsUrl,
      POTLUCK_NATS_PREFIX: prefix,
      POTLUCK_COORDINATOR_ADMIN_SECRET: adminSecret,
    },
    [],
  );
  service = await startCoordinatorService(config, { clock });
});
afterAll(async () => {
  await service?.close();
  await stopNats();
  await db?.drop();
  dir.remove();
});

async function stateOf(name: string): Promise<string | undefined> {
  const roster = (await (await service.app.request("/v1/roster")).json()) as Roster;
  return roster.machines.find((m) => m.name === name)?.state;
}

describe("coordinator NATS reconnect grace", () => {
  it("keeps machines online through its own outage and gives them the timeout again after reconnecting", async () => {
    const tokenRes = await service.app.request("/v1/tokens", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminSecret}` },
      body: "{}",
    });
    const { token } = (await tokenRes.json()) as { token: string };
    const key = randomKey();
    const identity = generateIdentity();
    const enroll = await service.app.request("/v1/enroll", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        token,
        name: "mac",
        owner: "home",
        wireguardPublicKey: key,
        identityPublicKey: identity.publicKey,
      }),
    });
    expect(enroll.status).toBe(201);

    const client = await natsConnect({ servers: natsUrl });
    publishHeartbeat(
      client,
      subjectsFor(prefix).heartbeat("mac"),
      { machine: "mac", wireguardPublicKey: key, seq: 1, sentAt: new Date().toISOString(), status: "ok" },
      { machine: "mac", privateKeyPem: identity.privateKeyPem },
    );
    await client.flush();
    await until(async () => (await stateOf("mac")) === "online", "mac online");
    await client.close();

    await stopNats();
    await until(() => service.state.heartbeats.coordinatorDisconnected, "the coordinator to notice the outage");
    clock.advance(5 * 60_000);
    expect(await stateOf("mac")).toBe("online"); // we heard nobody for 5 minutes: our outage, not mac's

    await startNats();
    await until(() => service.state.heartbeats.reconnects > 0, "the coordinator to reconnect", 120_000);
    clock.advance(HeartbeatTiming.offlineAfterMs);
    expect(await stateOf("mac")).toBe("online");
    clock.advance(1);
    expect(await stateOf("mac")).toBe("offline");
  }, 240_000);
});
