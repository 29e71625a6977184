import { AccountParam, BalancesQuery, EntriesQuery, PotluckHttpError, zodHook } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import type { Ledger } from "../ledger/service.js";

export function balanceRoutes(ledger: Ledger) {
  return new Hono()
    .get("/", validator("query", zodHook(BalancesQuery)), async (c) => {
      const q = c.req.valid("query");
      const rows = await ledger.balancesPage(q.after, q.limit);
      return c.json({ balances: rows, next: rows.length === q.limit ? rows[rows.length - 1]?.account : undefined });
    })
    .get("/:account", validator("param", zodHook(AccountParam)), async (c) => {
      const { account } = c.req.valid("param");
      return c.json(await known(ledger, account));
    });
}

export function accountRoutes(ledger: Ledger) {
  return new Hono().get(
    "/:account/entries",
    validator("param", zodHook(AccountParam)),
    validator("query", zodHook(EntriesQuery)),
    async (c) => {
      const { account } = c.req.valid("param");
      const q = c.req.valid("query");
      await known(ledger, account);
      const rows = await ledger.entriesPage(account, q.before ?? Number.MAX_SAFE_INTEGER, q.limit);
      return c.json({ entries: rows, next: rows.length === q.limit ? rows[rows.length - 1]?.seq : undefined });
    },
  );
}

async function known(ledger: Ledger, account: string) {
  const row = await ledger.balance(account);
  if (row === undefined)
    throw new PotluckHttpError(404, "unknown_account", `unknown account ${account}: it has no entries`, "account");
  return row;
}
