import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { auditAnchors, type AnchorAudit } from "./anchors/audit.js";
import { openLedgerDb } from "./db/open.js";
import { auditLedger, type AuditReport } from "./ledger/audit.js";
import { parseSignerKey, parseVerifierKey } from "@potluck/ledger-proof";

/**
 * What `potluck ledger verify` runs: opens the ledger's database read-only, without migrating it
 * (PostgreSQL if a URL is given, else the embedded one in the data directory), replays the chain
 * and checks anchor receipts.
 * The log's key comes from `key` (a verifier key) or the signer key file.
 */
export async function verifyLedgerDatabase(options: {
  databaseUrl?: string;
  dataDir: string;
  key?: string;
  keyFile?: string;
  fromHash?: string;
  witnessKeys?: string[];
}): Promise<{ chain: AuditReport; anchors: AnchorAudit }> {
  const vkey =
    options.key ?? parseSignerKey(await readFile(options.keyFile ?? join(options.dataDir, "ledger.key"), "utf8")).vkey;
  const logKey = parseVerifierKey(vkey);
  const opened = await openLedgerDb({
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
    dataDir: options.dataDir,
    readOnly: true,
  });
  try {
    const chain = await auditLedger(
      opened.db,
      logKey,
      options.fromHash === undefined ? {} : { fromHash: options.fromHash },
    );
    const anchors = await auditAnchors(opened.db, logKey, (options.witnessKeys ?? []).map(parseVerifierKey));
    return { chain, anchors };
  } finally {
    await opened.close();
  }
}
