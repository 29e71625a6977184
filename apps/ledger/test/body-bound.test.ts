import { ErrorBody } from "@potluck/protocol";
import { serveApp, type ServedApp } from "@potluck/service";
import { floodChunkedBody } from "@potluck/service/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildLedgerApp, requestBodyBytesMax } from "../src/app.js";
import { testLedger } from "./helpers/ledger.js";

// Attack 7 on the ledger: an unauthenticated chunked body at the signed-write routes, meant to be
// held in full before the signature check refuses it. The real app on a real socket, a real
// PostgreSQL database; the log must be as empty after as before.
describe("the ledger's signed-write routes under a 300 MiB chunked body", () => {
  let t: Awaited<ReturnType<typeof testLedger>>;
  let served: ServedApp;
  beforeAll(async () => {
    t = await testLedger();
    // Signed machine writes are on: the signature check is what would read the body.
    const app = buildLedgerApp({
      startedAt: Date.now(),
      ledger: t.ledger,
      writeAuth: { machines: { lookup: async () => undefined } },
    });
    served = await serveApp(app, { port: 0, hostname: "127.0.0.1" });
  }, 60_000);
  afterAll(async () => {
    await served?.close();
    await t?.close();
  });

  for (const path of ["/v1/events", "/v1/log/checkpoints", "/v1/log/snapshots"]) {
    it(`answers POST ${path} with 413 within a few buffers of the limit, holding none of it`, async () => {
      const sizeBefore = await t.ledger.log.size();
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      const result = await floodChunkedBody(served.port, {
        method: "POST",
        path,
        totalBytes: 300 * 1024 * 1024,
        headers: { "x-potluck-machine": "eve", "content-type": "application/json" },
      });
      const grownBytes = process.memoryUsage().rss - rssBefore;
      expect(result.status).toBe(413);
      expect(ErrorBody.parse(JSON.parse(result.body)).error.code).toBe("body_too_large");
      expect(result.sentBytes).toBeLessThan(requestBodyBytesMax + 16 * 1024 * 1024);
      expect(grownBytes).toBeLessThan(64 * 1024 * 1024);
      expect(await t.ledger.log.size()).toBe(sizeBefore);
    });
  }
});
