import { testLedger } from "/work/main/apps/ledger/test/helpers/ledger.ts";
import { fromUsage } from "/work/main/apps/ledger/src/ledger/events.ts";
const t = await testLedger();
const mk = (i: number) => fromUsage({ eventId: `e${i}`, jobId: "j", kind: "earn", account: "a" + (i % 100), counterparty: "b", servedBy: "m", model: "x", tokens: 1, amount: 1, at: "2026-01-01T00:00:00Z" });
for (let b = 0; b < 10; b++) {
  const evs = Array.from({ length: 1000 }, (_, j) => mk(b * 1000 + j));
  const t0 = performance.now();
  await t.ledger.append(evs);
  console.log("batch", b, (performance.now() - t0).toFixed(1), "ms");
}
await t.close();
