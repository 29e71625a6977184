import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe } from "vitest";
import { openLedgerDb } from "../src/db/open.js";
import { Ledger } from "../src/ledger/service.js";
import { generateSigner } from "@potluck/ledger-proof";
import { coreSuite } from "./helpers/core-suite.js";
import { ORIGIN } from "./helpers/ledger.js";

describe("ledger core on embedded PGlite (no DATABASE_URL)", () => {
  coreSuite(async () => {
    const dir = mkdtempSync(join(tmpdir(), "ledger-pglite-"));
    const opened = await openLedgerDb({ dataDir: dir });
    // Opening again runs the migrator again: it must be a no-op.
    await opened.close();
    const reopened = await openLedgerDb({ dataDir: dir });
    return {
      ledger: new Ledger(reopened.db, generateSigner(ORIGIN), ORIGIN),
      close: async () => {
        await reopened.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
});
