import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { HeartbeatTiming, RosterChanged, subjectsFor, type Roster } from "@potluck/protocol";
import { generateIdentity } from "@potluck/peer";
import { serveApp } from "@potluck/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCoordinatorConfig } from "../src/config.js";
import { startCoordinatorService, type CoordinatorService } from "../src/service.js";
import { adminSecret, createTestDatabase, publishHeartbeat, randomKey, tempDir } from "./support.js";

// The whole service in-process on real Postgres and the real NATS server, under a subject root
// of its own so concurrent runs never hear each other.
const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";
const prefix = `t${randomBytes(5).toString("hex")}`;
const subjects = subjectsFor(prefix);
const dir = tempDir("potluck-coord-nats-");
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let service: CoordinatorService;
let client: NatsConnection;
const changes: RosterChanged[] = [];

function config() {
  return loadCoordinatorConfig(
    {
      POTLUCK_DATA_DIR: dir.path,
      DATABASE_URL: db.url,
      POTLUCK_NATS_URL: natsUrl,
      POTLUCK_NATS_PREFIX: prefix,
      POTLUCK_COORDINATOR_ADMIN_SECRET: adminSecret,
    },
    [],
  );
}

beforeAll(async () => {
  db = await createTestDatabase();
  service = await startCoordinatorService(config());
  client = await connect({ servers: natsUrl });
  client.subscribe(subjects.rosterChanged, {
    callback: (_e, msg) => void changes.push(RosterChanged.parse(msg.json())),
  });
  await client.flush();
});
afterAll(async () => {
  await client?.drain();
  await service?.close();
  await db?.drop();
  dir.remove();
});

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function roster(): Promise<Roster> {
  return (await (await service.app.request("/v1/roster")).json()) as Roster;
}

/** Each enrolled machine's identity; heartbeats are signed with it. */
const identities = new Map<string, ReturnType<typeof generateIdentity>>();

async function enroll(name: string, wireguardPublicKey = randomKey()) {
  const identity = generateIdentity();
  identities.set(name, identity);
  const tokenRes = await service.app.request("/v1/tokens", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminSecret}` },
    body: "{}",
  });
  const { token } = (await tokenRes.json()) as { token: string };
  const res = await service.app.request("/v1/enroll", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token, name, owner: "home", wireguardPublicKey, identityPublicKey: identity.publicKey }),
  });
  expect(res.status).toBe(201);
  return wireguardPublicKey;
}

/**
 * A heartbeat as a machine sends it, signed by `signer` (the machine itself unless a test forges it; null: unsigned).
 */
function beat(
  machine: string,
  wireguardPublicKey: string,
  subject = subjects.heartbeat(machine),
  signer: string | null = machine,
) {
  const identity =
    signer === null ? null : { machine, privateKeyPem: (identities.get(signer) ?? generateIdentity()).privateKeyPem };
  publishHeartbeat(
    client,
    subject,
    { machine, wireguardPublicKey, seq: 1, sentAt: new Date().toISOString(), status: "ok" },
    identity,
  );
}

describe("coordinator over NATS", () => {
  it("publishes roster changes when a machine enrolls", async () => {
    await enroll("linux");
    await until(
      async () => changes.find((c) => c.reason === "enrolled" && c.machine === "linux"),
      "roster.changed enrolled",
    );
  });

  it("marks a machine online from a heartbeat and persists the receive time", async () => {
    const key = await enroll("mac");
    expect((await roster()).machines.find((m) => m.name === "mac")?.state).toBe("never_seen");
    beat("mac", key);
    const entry = await until(
      async () => (await roster()).machines.find((m) => m.name === "mac" && m.state === "online"),
      "mac online",
    );
    expect(entry.lastHeartbeatAt).not.toBeNull();
    expect(entry.staleKey).toBe(false);
    await until(
      async () => changes.find((c) => c.reason === "state_changed" && c.machine === "mac"),
      "state_changed for mac",
    );
    expect(await service.state.flush()).toBeGreaterThanOrEqual(0);
    const row = await service.database.db.query.machines.findFirst({ where: (m, { eq }) => eq(m.name, "mac") });
    expect(row?.lastHeartbeatAt).not.toBeNull();
  });

  it("flags a stale WireGuard key when the heartbeat's key differs from the roster", async () => {
    await enroll("windows");
    beat("windows", randomKey());
    const entry = await until(
      async () => (await roster()).machines.find((m) => m.name === "windows" && m.staleKey),
      "windows stale key",
    );
    expect(entry.state).toBe("online");
    await until(
      async () => changes.find((c) => c.reason === "stale_key" && c.machine === "windows"),
      "stale_key event",
    );
  });

  it("ignores a heartbeat whose body names another machine than its subject", async () => {
    const key = await enroll("closet");
    beat("closet", key, subjects.heartbeat("linux"));
    beat("linux", randomKey(), subjects.heartbeat("closet")); // body linux on closet's subject
    await client.flush();
    await new Promise((r) => setTimeout(r, 500));
    expect((await roster()).machines.find((m) => m.name === "closet")?.state).toBe("never_seen");
  });

  it("ignores a heartbeat that is unsigned or signed with another machine's key", async () => {
    const key = await enroll("attic");
    beat("attic", key, subjects.heartbeat("attic"), null);
    beat("attic", key, subjects.heartbeat("attic"), "mac"); // mac's key, claiming to be attic
    await client.flush();
    await new Promise((r) => setTimeout(r, 500));
    expect((await roster()).machines.find((m) => m.name === "attic")?.state).toBe("never_seen");
    beat("attic", key);
    await until(
      async () => (await roster()).machines.find((m) => m.name === "attic" && m.state === "online"),
      "attic online once it signs",
    );
  });

  it("serves Prometheus metrics to the admin (and to loopback callers)", async () => {
    expect((await service.app.request("/metrics")).status).toBe(401);
    const res = await service.app.request("/metrics", { headers: { authorization: `Bearer ${adminSecret}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/potluck_coordinator_machines\{state="online"\} [1-9]/);
    expect(text).toMatch(/potluck_coordinator_stale_keys 1/);
    expect(text).toMatch(/potluck_coordinator_heartbeats_total [1-9]/);
    expect(text).toMatch(/potluck_coordinator_heartbeats_rejected_total [1-9]/);
  });

  it("serves /metrics without the secret only to loopback under a loopback Host (not to a rebound web page)", async () => {
    const served = await serveApp(service.app, { port: 0, hostname: "127.0.0.1" });
    try {
      const scrape = (headers: Record<string, string>) =>
        new Promise<number>((resolve, reject) => {
          const req = request({ host: "127.0.0.1", port: served.port, path: "/metrics", headers }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on("error", reject);
          req.end();
        });
      expect(await scrape({ host: `127.0.0.1:${served.port}` })).toBe(200);
      expect(await scrape({ host: `rebind.attacker.example:${served.port}` })).toBe(401);
      expect(await scrape({ host: `127.0.0.1:${served.port}`, origin: "http://attacker.example" })).toBe(401);
    } finally {
      await served.close();
    }
  });

  it("remembers heartbeats across a coordinator restart", async () => {
    const key = (await roster()).machines.find((m) => m.name === "mac")?.wireguardPublicKey ?? "";
    beat("mac", key);
    const heard = await until(
      async () =>
        (await roster()).machines.find((m) => m.name === "mac" && m.lastHeartbeatAt !== null)?.lastHeartbeatAt ??
        undefined,
      "mac heard",
    );
    await service.close(); // flushes receive times
    service = await startCoordinatorService(config());
    const mac = (await roster()).machines.find((m) => m.name === "mac");
    expect(mac?.lastHeartbeatAt).not.toBeNull();
    expect(Date.parse(mac?.lastHeartbeatAt ?? "")).toBeGreaterThanOrEqual(Date.parse(heard));
    // Heard moments ago, so the restart keeps it online (unless this machine stalled past the timeout).
    const silentMs = Date.now() - Date.parse(mac?.lastHeartbeatAt ?? "");
    expect(mac?.state).toBe(silentMs < HeartbeatTiming.offlineAfterMs ? "online" : "offline");
  });
});
