import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { Roster } from "@potluck/protocol";
import { generateIdentity, privateKeyFromPem, signCoordinatorAnswer, SignedAudience, signRequest } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildLedgerApp } from "../src/app.js";
import { signGrant } from "../src/auth/admin.js";
import { coordinatorDirectory } from "../src/auth/roster.js";
import { ev, testLedger } from "./helpers/ledger.js";
import { hubKey, signedRoster } from "./helpers/signed-roster.js";

/** Serves an app on a free loopback port; resolves to its base URL. */
async function listen(
  fetch: (req: Request) => Response | Promise<Response>,
): Promise<{ url: string; server: ServerType }> {
  return new Promise((resolve) => {
    const server = serve({ fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
      resolve({ url: `http://127.0.0.1:${info.port}`, server }),
    );
  });
}

const close = (s: ServerType) => new Promise<void>((r) => s.close(() => r()));

describe("ledger HTTP writes need a writer", () => {
  const token = "w".repeat(48);
  const box = generateIdentity();
  const stranger = generateIdentity();
  let t: Awaited<ReturnType<typeof testLedger>>;
  let roster: { url: string; server: ServerType };
  let ledgerHttp: { url: string; server: ServerType };
  let rosterFetches = 0;
  const hub = hubKey();

  beforeAll(async () => {
    t = await testLedger();
    // A real roster over loopback HTTP, shaped as the coordinator's GET /v1/roster.
    const body = Roster.parse({
      version: 1,
      machines: [
        {
          id: "m1",
          name: "box",
          owner: "ann",
          meshIp: "100.64.0.2",
          wireguardPublicKey: box.publicKey,
          identityPublicKey: box.publicKey,
          endpoints: [],
          state: "online",
          lastHeartbeatAt: null,
          staleKey: false,
        },
      ],
    });
    roster = await listen(signedRoster(body, hub, () => (rosterFetches += 1)));
    await t.ledger.append([
      ev({ kind: "adjust", eventId: "grant", account: "ann", delta: 100, reason: "opening balance" }),
    ]);
    const app = buildLedgerApp({
      startedAt: Date.now(),
      ledger: t.ledger,
      writeAuth: {
        token,
        machines: coordinatorDirectory({ url: roster.url, coordinatorKey: hub.publicKey }),
        adminKey: hub.publicKey,
      },
    });
    ledgerHttp = await listen(app.fetch);
  });
  afterAll(async () => {
    await close(ledgerHttp.server);
    await close(roster.server);
    await t.close();
  });

  /** A request signed the way sidecars sign peer requests, by `pem` claiming to be `machine`. */
  const signed = (path: string, payload: unknown, machine: string, pem: string, tamper?: (body: string) => string) => {
    const body = JSON.stringify(payload);
    const headers = signRequest(
      { method: "POST", path, body, target: SignedAudience.ledger },
      { machine, privateKey: privateKeyFromPem(pem) },
    );
    return fetch(`${ledgerHttp.url}${path}`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: tamper === undefined ? body : tamper(body),
    });
  };
  const plain = (path: string, payload: unknown, headers: Record<string, string> = {}) =>
    fetch(`${ledgerHttp.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(payload),
    });
  const errorOf = async (res: Response) =>
    ((await res.json()) as { error: { code: string; message: string; field?: string } }).error;
  const size = () => t.ledger.log.size();

  it("applies an event signed by a roster machine for its own owner's account", async () => {
    const res = await signed(
      "/v1/events",
      { kind: "spend", eventId: "a-1", account: "ann", payee: "bob", amount: 1 },
      "box",
      box.privateKeyPem,
    );
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ status: "applied", seq: 1 });
  });

  it.each([
    ["unsigned", () => plain("/v1/events", { kind: "earn", eventId: "a-2", account: "ann", amount: 1 }), "unsigned"],
    [
      "forged: signed with a key that is not box's",
      () =>
        signed(
          "/v1/events",
          { kind: "earn", eventId: "a-2", account: "ann", amount: 1 },
          "box",
          stranger.privateKeyPem,
        ),
      "bad_signature",
    ],
    [
      "body changed after signing",
      () =>
        signed(
          "/v1/events",
          { kind: "earn", eventId: "a-2", account: "ann", amount: 1 },
          "box",
          box.privateKeyPem,
          (b) => b.replace('"amount":1', '"amount":9'),
        ),
      "bad_signature",
    ],
    [
      "machine not on the roster",
      () =>
        signed(
          "/v1/events",
          { kind: "earn", eventId: "a-2", account: "ann", amount: 1 },
          "ghost",
          stranger.privateKeyPem,
        ),
      "unknown_key",
    ],
    [
      "wrong bearer token",
      () =>
        plain(
          "/v1/events",
          { kind: "earn", eventId: "a-2", account: "ann", amount: 1 },
          { authorization: `Bearer ${"x".repeat(48)}` },
        ),
      "unauthorized",
    ],
  ])("refuses a write that is %s with 401 and appends nothing", async (_name, send, code) => {
    const before = await size();
    const res = await send();
    expect(res.status).toBe(401);
    const error = await errorOf(res);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(/write refused/);
    expect(await size()).toBe(before);
  });

  it("refuses a replayed signed request", async () => {
    const path = "/v1/events";
    const body = JSON.stringify({ kind: "spend", eventId: "a-3", account: "ann", payee: "bob", amount: 1 });
    const headers = {
      ...signRequest(
        { method: "POST", path, body, target: SignedAudience.ledger },
        { machine: "box", privateKey: privateKeyFromPem(box.privateKeyPem) },
      ),
      "content-type": "application/json",
    };
    expect((await fetch(`${ledgerHttp.url}${path}`, { method: "POST", headers, body })).status).toBe(201);
    const again = await fetch(`${ledgerHttp.url}${path}`, { method: "POST", headers, body });
    expect(again.status).toBe(401);
    expect((await errorOf(again)).code).toBe("replayed_nonce");
  });

  it("lets a machine write only its own owner's events, and no adjustments", async () => {
    const other = await signed(
      "/v1/events",
      { kind: "spend", eventId: "a-4", account: "bob", payee: "ann", amount: 1 },
      "box",
      box.privateKeyPem,
    );
    expect(other.status).toBe(403);
    expect((await errorOf(other)).field).toBe("account");
    const adjust = await signed(
      "/v1/events",
      { kind: "adjust", eventId: "a-5", account: "ann", delta: 5, reason: "x" },
      "box",
      box.privateKeyPem,
    );
    expect(adjust.status).toBe(403);
    expect((await errorOf(adjust)).field).toBe("kind");
  });

  it("lets only the admin grant; the write token takes snapshots, a machine may not", async () => {
    const grant = { kind: "adjust", eventId: "a-6", account: "ann", delta: 7, reason: "opening balance" };
    const byToken = await plain("/v1/events", grant, { authorization: `Bearer ${token}` });
    expect(byToken.status).toBe(403);
    const refusal = await errorOf(byToken);
    expect(refusal).toMatchObject({ code: "admin_signature_required", field: "kind" });
    expect(refusal.message).toMatch(/signed by the household admin.*not by the write token/);
    const body = JSON.stringify(grant);
    const res = await fetch(`${ledgerHttp.url}/v1/events`, {
      method: "POST",
      headers: { ...signGrant(body, hub.privateKey), "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(201);
    const bySigned = await signed("/v1/log/snapshots", {}, "box", box.privateKeyPem);
    expect(bySigned.status).toBe(403);
    expect((await plain("/v1/log/snapshots", {})).status).toBe(401);
    expect((await plain("/v1/log/checkpoints", {})).status).toBe(401);
    expect((await plain("/v1/log/snapshots", {}, { authorization: `Bearer ${token}` })).status).toBe(201);
  });

  it("keeps reads open", async () => {
    const res = await fetch(`${ledgerHttp.url}/v1/balances/ann`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ account: "ann", balance: 105 });
    expect((await fetch(`${ledgerHttp.url}/v1/log/proofs/ann`)).status).toBe(200);
  });

  it("refuses every write when no writer is configured, and says how to configure one", async () => {
    const bare = buildLedgerApp({ startedAt: Date.now(), ledger: t.ledger });
    const res = await bare.request("/v1/events", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "earn", eventId: "a-7", account: "ann", amount: 1 }),
    });
    expect(res.status).toBe(401);
    expect((await errorOf(res)).message).toMatch(/POTLUCK_LEDGER_WRITE_TOKEN/);
  });

  it("answers 503, not 500, when the roster cannot be read at all", async () => {
    const down = await listen(() => new Response("no", { status: 502 }));
    const app = buildLedgerApp({
      startedAt: Date.now(),
      ledger: t.ledger,
      writeAuth: { machines: coordinatorDirectory({ url: down.url, coordinatorKey: hub.publicKey }) },
    });
    const body = JSON.stringify({ kind: "earn", eventId: "a-8", account: "ann", amount: 1 });
    const headers = signRequest(
      { method: "POST", path: "/v1/events", body, target: SignedAudience.ledger },
      { machine: "box", privateKey: privateKeyFromPem(box.privateKeyPem) },
    );
    const res = await app.request("/v1/events", {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body,
    });
    await close(down.server);
    expect(res.status).toBe(503);
    expect((await errorOf(res)).message).toMatch(/roster/);
  });

  it("refuses a roster signed by any key but the pinned hub's: a LAN attacker answering in its place adds no writer", async () => {
    const attacker = hubKey();
    const eve = generateIdentity();
    const forged = {
      version: 1,
      machines: [
        {
          id: "m9",
          name: "evebox",
          owner: "ann",
          meshIp: "100.64.0.9",
          wireguardPublicKey: eve.publicKey,
          identityPublicKey: eve.publicKey,
          endpoints: [],
          state: "online",
          lastHeartbeatAt: null,
          staleKey: false,
        },
      ],
    };
    const fake = await listen(signedRoster(forged, attacker));
    const app = buildLedgerApp({
      startedAt: Date.now(),
      ledger: t.ledger,
      writeAuth: { machines: coordinatorDirectory({ url: fake.url, coordinatorKey: hub.publicKey }) },
    });
    const before = await t.ledger.balance("ann");
    const body = JSON.stringify({ kind: "adjust", eventId: "forged-1", account: "ann", delta: 1_000, reason: "x" });
    const res = await app.request("/v1/events", {
      method: "POST",
      headers: {
        ...signRequest(
          { method: "POST", path: "/v1/events", body, target: SignedAudience.ledger },
          { machine: "evebox", privateKey: privateKeyFromPem(eve.privateKeyPem) },
        ),
        "content-type": "application/json",
      },
      body,
    });
    await close(fake.server);
    expect(res.status).toBe(503);
    expect((await errorOf(res)).message).toMatch(/not signed by|another key|refused/);
    expect(await t.ledger.balance("ann")).toEqual(before);
  });

  it("finds a machine by its roster name only, never by its id", async () => {
    const directory = coordinatorDirectory({ url: roster.url, coordinatorKey: hub.publicKey });
    expect(await directory.lookup("box")).toMatchObject({ owner: "ann" });
    expect(await directory.lookup("m1")).toBeUndefined();
  });

  it("does not refetch the roster for every unknown name", async () => {
    let now = 1_000_000;
    const directory = coordinatorDirectory({
      url: roster.url,
      coordinatorKey: hub.publicKey,
      now: () => now,
      limits: { refreshMs: 30_000, earlyRefreshMinMs: 5_000 },
    });
    const before = rosterFetches;
    expect(await directory.lookup("box")).toMatchObject({ owner: "ann" });
    for (let i = 0; i < 20; i += 1) expect(await directory.lookup(`ghost${i}`)).toBeUndefined();
    expect(rosterFetches - before).toBe(1);
    // After the miss interval one unknown name may look again (a machine enrolled a moment ago).
    now += 6_000;
    expect(await directory.lookup("ghost")).toBeUndefined();
    expect(rosterFetches - before).toBe(2);
  });
});
