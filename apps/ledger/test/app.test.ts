import { LedgerAmounts, LedgerEntry } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildLedgerApp } from "../src/app.js";
import { loadLedgerConfig } from "../src/config.js";
import { createLedgerMetrics } from "../src/metrics.js";
import { verifyProofBundle } from "@potluck/ledger-proof";
import { signGrant } from "../src/auth/admin.js";
import { testLedger } from "./helpers/ledger.js";
import { hubKey } from "./helpers/signed-roster.js";

describe("ledger HTTP API", () => {
  let t: Awaited<ReturnType<typeof testLedger>>;
  let app: ReturnType<typeof buildLedgerApp>;
  const token = "t".repeat(40);
  // Grants are the household admin's (signed with the hub's key); everything else here the operator's token.
  const hub = hubKey();
  const post = (path: string, body: unknown) => {
    const text = JSON.stringify(body);
    const auth =
      (body as { kind?: string }).kind === "adjust"
        ? signGrant(text, hub.privateKey)
        : { authorization: `Bearer ${token}` };
    return app.request(path, { method: "POST", headers: { "content-type": "application/json", ...auth }, body: text });
  };
  const errorOf = async (res: Response) =>
    ((await res.json()) as { error: { code: string; message: string; field?: string } }).error;

  beforeAll(async () => {
    t = await testLedger();
    app = buildLedgerApp({
      startedAt: Date.now(),
      ledger: t.ledger,
      metrics: createLedgerMetrics(t.ledger),
      writeAuth: { token, adminKey: hub.publicKey },
    });
  });
  afterAll(async () => t.close());

  it("answers /health", async () => {
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", service: "ledger" });
  });

  it("applies an event, then answers the same event as already applied", async () => {
    const body = { kind: "adjust", eventId: "h-1", account: "ann", delta: 500, reason: "grant" };
    const first = await post("/v1/events", body);
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ status: "applied", seq: 0 });
    const again = await post("/v1/events", body);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ status: "already_applied", seq: 0 });
  });

  it.each([
    ["negative amount", { kind: "spend", eventId: "h-2", account: "ann", payee: "peer", amount: -5 }, 400, "amount"],
    [
      "non-integer amount",
      { kind: "spend", eventId: "h-2", account: "ann", payee: "peer", amount: 1.5 },
      400,
      "amount",
    ],
    ["zero adjust", { kind: "adjust", eventId: "h-2", account: "ann", delta: 0, reason: "x" }, 400, "delta"],
    ["bad account name", { kind: "earn", eventId: "h-2", account: "Ann!", amount: 1 }, 400, "account"],
    ["unknown kind", { kind: "transfer", eventId: "h-2", account: "ann", amount: 1 }, 400, "kind"],
    ["unknown account", { kind: "spend", eventId: "h-2", account: "zed", payee: "peer", amount: 1 }, 404, "account"],
    ["overdraw", { kind: "spend", eventId: "h-2", account: "ann", payee: "peer", amount: 501 }, 409, "amount"],
    [
      "mismatched duplicate id",
      { kind: "adjust", eventId: "h-1", account: "ann", delta: 501, reason: "grant" },
      409,
      "eventId",
    ],
    [
      "a bare earn (credits come only paired with a spend)",
      { kind: "earn", eventId: "h-2", account: "ann", amount: 1 },
      422,
      "kind",
    ],
    [
      "an amount above the per-event maximum",
      { kind: "spend", eventId: "h-2", account: "ann", payee: "peer", amount: LedgerAmounts.eventMicroMax + 1 },
      400,
      "amount",
    ],
    [
      "unknown hold",
      { kind: "settle", eventId: "h-2", account: "ann", holdEventId: "nope", amount: 1 },
      404,
      "holdEventId",
    ],
  ])("refuses %s with a clear 4xx naming the field", async (_name, body, status, field) => {
    const res = await post("/v1/events", body);
    expect(res.status).toBe(status);
    const error = await errorOf(res);
    expect(error.field).toBe(field);
    expect(error.message.length).toBeGreaterThan(5);
  });

  it("refuses malformed JSON and oversized bodies without a 500", async () => {
    const bad = await app.request("/v1/events", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: "{",
    });
    expect(bad.status).toBe(400);
    const big = await post("/v1/events", {
      kind: "earn",
      eventId: "h-3",
      account: "ann",
      amount: 1,
      pad: "x".repeat(20_000),
    });
    expect(big.status).toBe(413);
  });

  it("serves balances, paged entries, checkpoints, snapshots and proofs", async () => {
    for (let i = 0; i < 5; i += 1)
      expect(
        (await post("/v1/events", { kind: "spend", eventId: `h-s${i}`, account: "ann", payee: "peer", amount: 10 }))
          .status,
      ).toBe(201);
    expect(await (await app.request("/v1/balances/ann")).json()).toMatchObject({
      account: "ann",
      balance: 450,
      held: 0,
    });
    expect((await app.request("/v1/balances/zed")).status).toBe(404);
    const page1 = (await (await app.request("/v1/accounts/ann/entries?limit=4")).json()) as {
      entries: { seq: number }[];
      next?: number;
    };
    for (const entry of page1.entries) expect(LedgerEntry.safeParse(entry).success).toBe(true);
    // Each spend is an entry pair: ann's debit, then peer's earn.
    expect(page1.entries.map((e) => e.seq)).toEqual([9, 7, 5, 3]);
    const page2 = (await (await app.request(`/v1/accounts/ann/entries?limit=4&before=${page1.next}`)).json()) as {
      entries: { seq: number }[];
    };
    expect(page2.entries.map((e) => e.seq)).toEqual([1, 0]);
    expect((await app.request("/v1/accounts/ann/entries?limit=100000")).status).toBe(400);
    expect((await app.request("/v1/log/proofs/ann")).status).toBe(404);
    expect((await post("/v1/log/snapshots", {})).status).toBe(201);
    const latest = (await (await app.request("/v1/log/checkpoints/latest")).json()) as { size: number; note: string };
    expect(latest.size).toBe(12);
    const bundle = await (await app.request("/v1/log/proofs/ann")).json();
    const { key } = (await (await app.request("/v1/log/key")).json()) as { key: string };
    expect(verifyProofBundle(bundle, key)).toMatchObject({ account: "ann", balance: 450 });
    expect((await app.request("/v1/log/proofs/consistency?from=3&to=7")).status).toBe(200);
    expect((await app.request("/v1/log/proofs/consistency?from=3&to=70")).status).toBe(400);
  });

  it("exposes Prometheus metrics that count what happened", async () => {
    const text = await (await app.request("/metrics")).text();
    expect(text).toMatch(/potluck_ledger_events_applied_total 6/);
    expect(text).toMatch(/potluck_ledger_events_rejected_total\{code="overdraw"\} 1/);
    expect(text).toMatch(/potluck_ledger_log_size 12/);
  });
});

describe("ledger config", () => {
  it("stops on a bad port naming the variable", () => {
    expect(() => loadLedgerConfig({ POTLUCK_LEDGER_PORT: "x" }, [])).toThrow(/POTLUCK_LEDGER_PORT/);
  });
});
