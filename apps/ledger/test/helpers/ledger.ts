import { openLedgerDb, type OpenedDb } from "../../src/db/open.js";
import { fromRequest, type IncomingEvent } from "../../src/ledger/events.js";
import { Ledger } from "../../src/ledger/service.js";
import { generateSigner } from "@potluck/ledger-proof";
import type { Anchor } from "../../src/anchors/anchor.js";
import type { LedgerEventRequest } from "@potluck/protocol";
import { createTestDb } from "./db.js";

export const ORIGIN = "potluck.test/ledger";

/** A ledger on its own fresh PostgreSQL database; `close()` drops it. */
export async function testLedger(
  anchors: Anchor[] = [],
): Promise<{ ledger: Ledger; opened: OpenedDb; url: string; close: () => Promise<void> }> {
  const tdb = await createTestDb();
  const opened = await openLedgerDb({ databaseUrl: tdb.url, dataDir: "/nonexistent" });
  const ledger = new Ledger(opened.db, generateSigner(ORIGIN), ORIGIN, anchors);
  return {
    ledger,
    opened,
    url: tdb.url,
    close: async () => {
      await opened.close();
      await tdb.drop();
    },
  };
}

export function ev(req: LedgerEventRequest): IncomingEvent {
  return fromRequest(req);
}

/** Grants `amount` to each account through the append path of a second connection (the operator's adjust). */
export async function grantAll(databaseUrl: string, accounts: readonly string[], amount: number): Promise<void> {
  const opened = await openLedgerDb({ databaseUrl, dataDir: "/nonexistent" });
  try {
    const ledger = new Ledger(opened.db, generateSigner(ORIGIN), ORIGIN);
    await ledger.append(
      accounts.map((account) =>
        ev({ kind: "adjust", eventId: `grant-${account}`, account, delta: amount, reason: "test grant" }),
      ),
    );
  } finally {
    await opened.close();
  }
}
