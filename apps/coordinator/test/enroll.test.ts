import { isMeshIp } from "@potluck/protocol";
import { generateIdentity, privateKeyFromPem, SignedAudience, signRequest } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock.js";
import { adminHeaders, createTestDatabase, randomKey, tempDir, testCoordinator } from "./support.js";

// Enrollment against the real PostgreSQL server, in a database this file creates and drops.
const dir = tempDir("potluck-coord-enroll-");
const clock = new ManualClock(Date.now());
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let t: Awaited<ReturnType<typeof testCoordinator>>;

beforeAll(async () => {
  db = await createTestDatabase();
  t = await testCoordinator({ databaseUrl: db.url, dataDir: dir.path, clock });
});
afterAll(async () => {
  await t?.database.close();
  await db?.drop();
  dir.remove();
});

async function errorOf(res: Response): Promise<{ status: number; code: string; field?: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; field?: string; message: string } };
  return { status: res.status, ...body.error };
}

describe("join tokens", () => {
  it("is single-use: the second enrollment names the reuse", async () => {
    const token = await t.createToken();
    expect((await t.enroll({ token, name: "once-a" })).status).toBe(201);
    const again = await errorOf(await t.enroll({ token, name: "once-b" }));
    expect(again).toMatchObject({ status: 401, code: "token_used", field: "token" });
    expect(again.message).toMatch(/already used/);
  });

  it("names an expired token", async () => {
    const token = await t.createToken({ ttlS: 60 });
    clock.advance(61_000);
    const res = await errorOf(await t.enroll({ token, name: "late" }));
    expect(res).toMatchObject({ status: 401, code: "token_expired", field: "token" });
    expect(res.message).toMatch(/expired at/);
  });

  it("purges tokens a day after they expired; then they are unknown", async () => {
    const token = await t.createToken({ ttlS: 60 });
    clock.advance(61_000);
    expect((await errorOf(await t.enroll({ token, name: "later" }))).code).toBe("token_expired");
    clock.advance(24 * 3600 * 1000);
    await t.createToken(); // creation purges
    expect((await errorOf(await t.enroll({ token, name: "later" }))).code).toBe("token_unknown");
  });

  it("names an unknown token", async () => {
    const res = await errorOf(await t.enroll({ token: "plj_" + "x".repeat(32), name: "stranger" }));
    expect(res).toMatchObject({ status: 401, code: "token_unknown", field: "token" });
  });

  it("lets a reusable token enroll several machines", async () => {
    const token = await t.createToken({ reusable: true });
    expect((await t.enroll({ token, name: "multi-a" })).status).toBe(201);
    expect((await t.enroll({ token, name: "multi-b" })).status).toBe(201);
  });

  it("does not spend a token on a failed enrollment", async () => {
    const token = await t.createToken();
    expect((await t.enroll({ token, name: "once-a" })).status).toBe(409); // name taken
    expect((await t.enroll({ token, name: "second-try" })).status).toBe(201);
  });

  it("stores only the token's hash", async () => {
    const token = await t.createToken();
    const rows = await t.database.db.query.joinTokens.findMany();
    expect(rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it("rejects a bad ttl naming the field", async () => {
    const res = await t.app.request("/v1/tokens", {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ ttlS: 5 }),
    });
    expect(await errorOf(res)).toMatchObject({ status: 400, field: "ttlS" });
  });
});

describe("enrollment input", () => {
  it("answers malformed keys with 400 naming the field", async () => {
    const token = await t.createToken({ reusable: true });
    const wg = await errorOf(await t.enroll({ token, name: "badkey", wireguardPublicKey: "not-a-key" as never }));
    expect(wg).toMatchObject({ status: 400, field: "wireguardPublicKey" });
    const id = await errorOf(await t.enroll({ token, name: "badkey", identityPublicKey: "QUJD" as never }));
    expect(id).toMatchObject({ status: 400, field: "identityPublicKey" });
    const ep = await errorOf(await t.enroll({ token, name: "badkey", endpoints: ["no-port"] }));
    expect(ep).toMatchObject({ status: 400, field: "endpoints.0" });
    const name = await errorOf(await t.enroll({ token, name: "Bad Name" }));
    expect(name).toMatchObject({ status: 400, field: "name" });
  });

  it("answers a duplicate name and a duplicate WireGuard key with 409", async () => {
    const token = await t.createToken({ reusable: true });
    const key = randomKey();
    expect((await t.enroll({ token, name: "dup", wireguardPublicKey: key as never })).status).toBe(201);
    expect(await errorOf(await t.enroll({ token, name: "dup" }))).toMatchObject({
      status: 409,
      code: "name_taken",
      field: "name",
    });
    expect(await errorOf(await t.enroll({ token, name: "dup-2", wireguardPublicKey: key as never }))).toMatchObject({
      status: 409,
      code: "key_taken",
      field: "wireguardPublicKey",
    });
  });

  it("answers malformed JSON with a 400, not a 500", async () => {
    const res = await t.app.request("/v1/enroll", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{nope",
    });
    expect(res.status).toBe(400);
  });
});

describe("mesh addresses", () => {
  it("gives 100 concurrent enrollments 100 distinct addresses in 100.64.0.0/10", async () => {
    const token = await t.createToken({ reusable: true });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => t.enroll({ token, name: `burst-${i}` })));
    const bodies = await Promise.all(
      results.map(async (r) => ({ status: r.status, body: (await r.json()) as { machine: { meshIp: string } } })),
    );
    expect(bodies.filter((b) => b.status !== 201)).toEqual([]);
    const ips = bodies.map((b) => b.body.machine.meshIp);
    expect(new Set(ips).size).toBe(100);
    expect(ips.every(isMeshIp)).toBe(true);
    const roster = (await (await t.app.request("/v1/roster")).json()) as { machines: Array<{ meshIp: string }> };
    const all = roster.machines.map((m) => m.meshIp);
    expect(new Set(all).size).toBe(all.length);
  });

  it("reuses the address of a removed machine", async () => {
    const token = await t.createToken({ reusable: true });
    const first = (await (await t.enroll({ token, name: "leaver" })).json()) as {
      machine: { id: string; meshIp: string };
    };
    const del = await t.app.request(`/v1/machines/${first.machine.id}`, { method: "DELETE", headers: adminHeaders });
    expect(del.status).toBe(200);
    expect((await t.app.request(`/v1/machines/${first.machine.id}`)).status).toBe(404);
    const next = (await (await t.enroll({ token, name: "arriver" })).json()) as { machine: { meshIp: string } };
    expect(next.machine.meshIp).toBe(first.machine.meshIp);
    expect(t.events.some((e) => e.reason === "removed" && e.machine === "leaver")).toBe(true);
  });

  it("returns every other machine as a peer", async () => {
    const token = await t.createToken();
    const res = (await (await t.enroll({ token, name: "newcomer" })).json()) as {
      machine: { id: string };
      peers: Array<{ id: string }>;
    };
    const roster = (await (await t.app.request("/v1/roster")).json()) as { machines: Array<{ id: string }> };
    expect(res.peers.length).toBe(roster.machines.length - 1);
    expect(res.peers.some((p) => p.id === res.machine.id)).toBe(false);
  });
});

describe("key rotation", () => {
  it("rotates a machine's keys (admin) and bumps the roster version", async () => {
    const token = await t.createToken();
    const enrolled = (await (await t.enroll({ token, name: "rotator" })).json()) as { machine: { id: string } };
    const before = (await (await t.app.request("/v1/roster")).json()) as { version: number };
    const key = randomKey();
    const unauth = await t.app.request(`/v1/machines/rotator/keys`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ wireguardPublicKey: key }),
    });
    expect(unauth.status).toBe(401);
    const res = await t.app.request(`/v1/machines/${enrolled.machine.id}/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ wireguardPublicKey: key }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ wireguardPublicKey: key, name: "rotator" });
    const after = (await (await t.app.request("/v1/roster")).json()) as { version: number };
    expect(after.version).toBe(before.version + 1);
    const bad = await t.app.request(`/v1/machines/rotator/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ wireguardPublicKey: "zz" }),
    });
    expect(await errorOf(bad)).toMatchObject({ status: 400, field: "wireguardPublicKey" });
  });

  it("lets a machine rotate its own keys with a request signed by its identity key, and no one else's", async () => {
    const token = await t.createToken({ reusable: true });
    const own = generateIdentity();
    const other = generateIdentity();
    expect((await t.enroll({ token, name: "selfrot", identityPublicKey: own.publicKey as never })).status).toBe(201);
    expect((await t.enroll({ token, name: "intruder", identityPublicKey: other.publicKey as never })).status).toBe(201);
    const path = "/v1/machines/selfrot/keys";
    const body = JSON.stringify({ wireguardPublicKey: randomKey() });
    const signed = (machine: string, pem: string) =>
      signRequest(
        { method: "POST", path, body, target: SignedAudience.coordinator },
        { machine, privateKey: privateKeyFromPem(pem) },
      );
    const post = (headers: Record<string, string>) =>
      t.app.request(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

    const forged = await post(signed("intruder", other.privateKeyPem));
    expect(forged.status).toBe(401);
    const wrongKey = await post(signed("selfrot", other.privateKeyPem));
    expect(await errorOf(wrongKey)).toMatchObject({ status: 401, code: "unauthorized" });
    const headers = signed("selfrot", own.privateKeyPem);
    const ok = await post(headers);
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(await ok.json()).toMatchObject({ name: "selfrot", wireguardPublicKey: JSON.parse(body).wireguardPublicKey });
    const replayed = await post(headers);
    expect(replayed.status).toBe(401);
    expect((await errorOf(replayed)).message).toMatch(/nonce/);
  });
});
