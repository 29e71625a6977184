import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { generateIdentity, privateKeyFromPem, SignedAudience, signRequest } from "@potluck/peer";
import { LedgerAdmin } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildLedgerApp } from "../src/app.js";
import { adminKeyFor, grantPath, hubSigningKeyPath, signGrant } from "../src/auth/admin.js";
import { rawSql } from "./helpers/db.js";
import { testLedger } from "./helpers/ledger.js";
import { potluck } from "./helpers/potluck-cli.js";
import { hubKey } from "./helpers/signed-roster.js";

type ErrorBody = { error: { code: string; message: string; field?: string } };

/**
 * Admin grants (adjust, the only entries that change the sum of all balances) on real PostgreSQL:
 * accepted only when signed with the hub's key, refused with a 403 naming why otherwise, and
 * listed by GET /v1/grants and `potluck ledger grants`.
 */
describe("admin grants", () => {
  const token = "g".repeat(40);
  const hubPem = generateIdentity().privateKeyPem;
  const hub = { privateKey: privateKeyFromPem(hubPem), publicKey: "" };
  const dir = mkdtempSync(join(tmpdir(), "ledger-grants-"));
  let t: Awaited<ReturnType<typeof testLedger>>;
  let server: ServerType;
  let url = "";
  let sql: ReturnType<typeof rawSql>;

  beforeAll(async () => {
    // The hub's data dir, as `potluck hub`/the coordinator leaves it: the key the admin signs with.
    mkdirSync(join(dir, "coordinator"), { mode: 0o700 });
    writeFileSync(hubSigningKeyPath(dir), hubPem, { mode: 0o600 });
    hub.publicKey = adminKeyFor({ dataDir: dir }) ?? "";
    t = await testLedger();
    sql = rawSql(t.url);
    const app = buildLedgerApp({
      startedAt: Date.now(),
      ledger: t.ledger,
      writeAuth: { token, adminKey: hub.publicKey },
    });
    url = await new Promise<string>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
        resolve(`http://127.0.0.1:${info.port}`),
      );
    });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await sql?.end();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const grant = (eventId: string, account: string, delta: number) =>
    JSON.stringify({ kind: "adjust", eventId, account, delta, reason: "welcome" });
  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${url}${grantPath}`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
  /** Everything a refused grant could have changed. */
  const state = async () =>
    JSON.stringify(
      await sql`select (select json_agg(b order by account) from balances b) as balances, (select count(*) from entries)::int as entries`,
    );

  it("reads the admin's public key from the hub's key file, or takes POTLUCK_COORDINATOR_KEY first", () => {
    expect(hub.publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(adminKeyFor({ dataDir: dir, coordinatorKey: "k" })).toBe("k");
    expect(adminKeyFor({ dataDir: join(dir, "nowhere") })).toBeUndefined();
  });

  it("applies a grant signed with the hub's key, once, and lists it", async () => {
    const body = grant("g-1", "ann", 5_000);
    const headers = signGrant(body, hub.privateKey);
    const res = await post(body, headers);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ status: "applied", seq: 0 });
    // The same signed request again is a replay, not a second grant.
    const replay = await post(body, headers);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as ErrorBody).error.code).toBe("replayed_nonce");
    const listed = (await (await fetch(`${url}/v1/grants`)).json()) as { grants: { account: string; delta: number }[] };
    expect(listed.grants).toEqual([expect.objectContaining({ account: "ann", delta: 5_000 })]);
    expect(await t.ledger.balance("ann")).toMatchObject({ balance: 5_000 });
  });

  it.each([
    ["the write token", () => ({ authorization: `Bearer ${token}` }), 403, "admin_signature_required"],
    [
      "a key that is not the hub's, claiming to be the admin",
      (body: string) => signGrant(body, privateKeyFromPem(generateIdentity().privateKeyPem)),
      401,
      "bad_signature",
    ],
    [
      "the hub's key signing another route's request",
      (body: string) =>
        signRequest(
          { method: "POST", path: "/v1/log/snapshots", body, target: SignedAudience.ledger },
          { machine: LedgerAdmin.signer, privateKey: hub.privateKey },
        ),
      401,
      "bad_signature",
    ],
    [
      "the hub's key signing for a peer machine, not the ledger",
      (body: string) =>
        signRequest(
          { method: "POST", path: grantPath, body, target: "box" },
          { machine: LedgerAdmin.signer, privateKey: hub.privateKey },
        ),
      401,
      "bad_signature",
    ],
    ["no signature and no token", () => ({}), 401, "unsigned"],
  ])("refuses a grant from %s, and nothing changes", async (_who, auth, status, code) => {
    const before = await state();
    const body = grant("g-2", "eve", 1_000_000);
    const res = await post(body, auth(body));
    expect(res.status).toBe(status);
    expect(((await res.json()) as ErrorBody).error.code).toBe(code);
    expect(await state()).toBe(before);
  });

  it("names why a token grant is refused", async () => {
    const res = await post(grant("g-3", "eve", 1), { authorization: `Bearer ${token}` });
    const { error } = (await res.json()) as ErrorBody;
    expect(error.field).toBe("kind");
    expect(error.message).toMatch(/signed by the household admin \(the hub's signing key\), not by the write token/);
    expect(error.message).toMatch(/potluck ledger grant/);
  });

  it("refuses every grant on a ledger that knows no admin key, saying how to configure one", async () => {
    const bare = buildLedgerApp({ startedAt: Date.now(), ledger: t.ledger, writeAuth: { token } });
    const body = grant("g-4", "eve", 1);
    for (const headers of [signGrant(body, hub.privateKey), { authorization: `Bearer ${token}` }]) {
      const res = await bare.request(grantPath, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body,
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as ErrorBody).error.message).toMatch(/POTLUCK_COORDINATOR_KEY/);
    }
    expect(await t.ledger.balance("eve")).toBeUndefined();
  });

  it("grants with `potluck ledger grant` on the hub and lists with `potluck ledger grants`", async () => {
    const out = await potluck(
      ["ledger", "grant", "bob", "250", "--reason", "first visit", "--id", "cli-1", "--url", url, "--data-dir", dir],
      {},
    );
    expect(out.stderr).toBe("");
    expect(out.stdout).toMatch(/grant cli-1 applied as entry 1: bob 250 micro-credits/);
    const listed = await potluck(["ledger", "grants", "--url", url], {});
    expect(listed.stdout).toMatch(/entry 1 {2}bob {2}\+250 micro-credits/);
    expect(listed.stdout).toMatch(/entry 0 {2}ann {2}\+5000 micro-credits/);
    // Off the hub there is no key to sign with: the CLI says whose file it needs, and nothing is sent.
    const elsewhere = await potluck(
      ["ledger", "grant", "bob", "1", "--reason", "x", "--url", url, "--data-dir", join(dir, "not-the-hub")],
      {},
    );
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toMatch(/cannot read the hub's signing key .*signing-ed25519\.pem/);
    expect(await t.ledger.balance("bob")).toMatchObject({ balance: 250 });
  });
});
