import { sql } from "drizzle-orm";
import type { LedgerDb } from "./open.js";

type Tx = Parameters<Parameters<LedgerDb["transaction"]>[0]>[0];

/**
 * Marks the transaction as the append path, which alone may write `balances` and `head` (the
 * triggers of migration 0007 refuse any other write). Transaction-local: it ends with the commit
 * or rollback. Sent now (execute), so it precedes every statement the caller sends after it.
 */
export function markAppendPath(tx: Pick<Tx, "execute">): Promise<unknown> {
  return tx.execute(sql`select set_config('potluck.ledger_append', 'on', true)`).execute();
}
