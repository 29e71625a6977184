import { ListQuery, zodHook } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import type { Ledger } from "../ledger/service.js";

/**
 * What an operator (or any member) checks the ledger's conservation against: every admin grant
 * (the only entries that change the sum of all balances) and every usage message parked by the
 * ingest. Reads, open like the balances; pages newest first.
 */
export function operatorRoutes(ledger: Ledger) {
  return new Hono()
    .get("/grants", validator("query", zodHook(ListQuery)), async (c) => {
      const q = c.req.valid("query");
      const rows = await ledger.grantsPage(q.before ?? Number.MAX_SAFE_INTEGER, q.limit);
      return c.json({ grants: rows, next: rows.length === q.limit ? rows[rows.length - 1]?.seq : undefined });
    })
    .get("/parked", validator("query", zodHook(ListQuery)), async (c) => {
      const q = c.req.valid("query");
      const rows = await ledger.parkedPage(q.before ?? Number.MAX_SAFE_INTEGER, q.limit);
      return c.json({ parked: rows, next: rows.length === q.limit ? rows[rows.length - 1]?.id : undefined });
    });
}
