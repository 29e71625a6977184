import { generateSigner } from "@potluck/ledger-proof";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HoldExpiry } from "../src/ledger/expire.js";
import { Ledger } from "../src/ledger/service.js";
import { ev, ORIGIN, testLedger } from "./helpers/ledger.js";

// The ledger's backstop: a hold nobody closes (its requester crashed after placing it) is voided
// once it has been open longer than HoldExpiry.openMsMax; a closed or recent hold is left alone.
describe("holds nobody closes", () => {
  let t: Awaited<ReturnType<typeof testLedger>>;
  let now = Date.now();
  let ledger: Ledger;

  beforeAll(async () => {
    t = await testLedger();
    ledger = new Ledger(t.opened.db, generateSigner(ORIGIN), ORIGIN, [], () => now);
    await ledger.append([
      ev({ kind: "adjust", eventId: "g-home", account: "home", delta: 1_000, reason: "grant" }),
      ev({ kind: "hold", eventId: "h-open", account: "home", payee: "eve", amount: 100, jobId: "j1" }),
      ev({ kind: "hold", eventId: "h-settled", account: "home", payee: "eve", amount: 100, jobId: "j2" }),
      ev({ kind: "hold", eventId: "h-voided", account: "home", payee: "eve", amount: 100, jobId: "j3" }),
      ev({ kind: "settle", eventId: "s2", account: "home", holdEventId: "h-settled", amount: 40 }),
      ev({ kind: "void", eventId: "v3", account: "home", holdEventId: "h-voided" }),
    ]);
  });
  afterAll(async () => {
    await t?.close();
  });

  it("leaves a hold alone while it is younger than the bound", async () => {
    now += HoldExpiry.openMsMax - 1_000;
    expect(await ledger.expireHolds()).toBe(0);
    expect(await ledger.balance("home")).toMatchObject({ balance: 960, held: 100 });
  });

  it("voids the open hold once it is older, once, and the credits are available again", async () => {
    now += 2_000;
    expect(await ledger.expireHolds()).toBe(1);
    expect(await ledger.balance("home")).toMatchObject({ balance: 960, held: 0 });
    expect(await ledger.expireHolds()).toBe(0);
    // The server's settlement arriving after that is refused: the hold is closed.
    const [late] = await ledger.append([
      ev({ kind: "settle", eventId: "s1", account: "home", holdEventId: "h-open", amount: 10 }),
    ]);
    expect(late).toMatchObject({ status: "rejected", refusal: { code: "hold_closed" } });
    expect(await ledger.audit()).toMatchObject({ ok: true });
  });
});
