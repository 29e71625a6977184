import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromRequest, loadLedgerConfig, startLedgerService, type LedgerService } from "@potluck/ledger";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// The runbook's restore, step by step (docs: "Beyond one household"): back the ledger's database
// up with pg_dump, restore it with pg_restore into a fresh database, run `potluck ledger verify`
// on it, then compare it with the newest checkpoint saved outside the database (the file anchor,
// DATA_DIR/ledger-checkpoints.jsonl): a ledger started on the restored database with ingest off
// must answer the same signed checkpoint at that size. A backup older than the saved checkpoint
// verifies on its own, and the comparison is what shows it is stale.
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const tag = randomBytes(3).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "potluck-restore-"));
const dbs = { live: `restore_live_${tag}`, old: `restore_old_${tag}`, new: `restore_new_${tag}` };
const urlOf = (db: string) => adminUrl.replace(/\/[^/]*$/, `/${db}`);
const keyFile = join(dir, "ledger.key");
const anchorFile = join(dir, "ledger-checkpoints.jsonl");
const admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });

afterAll(async () => {
  for (const db of Object.values(dbs)) await admin.unsafe(`drop database if exists ${db} with (force)`);
  await admin.end({ timeout: 5 });
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

function ledgerOn(db: string): Promise<LedgerService> {
  return startLedgerService(
    loadLedgerConfig(
      {
        DATABASE_URL: urlOf(db),
        POTLUCK_DATA_DIR: join(dir, db),
        POTLUCK_LEDGER_KEY_FILE: keyFile,
        POTLUCK_LEDGER_ANCHOR_FILE: anchorFile,
        POTLUCK_LEDGER_INGEST: "0",
      },
      [],
    ),
  );
}

async function sh(argv: string[]): Promise<string> {
  const r = await run(argv, { timeoutMs: 120_000 });
  expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function grants(service: LedgerService, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++)
    await service.ledger.append([
      fromRequest({ kind: "adjust", eventId: `g-${i}`, account: `acct${i % 7}`, delta: 1_000 + i, reason: "t" }),
    ]);
}

describe("restoring the ledger from a backup", () => {
  it("verifies the restore and proves it against the checkpoint saved outside the database", async () => {
    await admin.unsafe(`create database ${dbs.live}`);
    const live = await ledgerOn(dbs.live);
    await grants(live, 0, 40);
    await live.ledger.checkpoint();
    await live.ledger.publishAnchors();
    const oldDump = join(dir, "old.dump");
    await sh(["pg_dump", "-Fc", "-f", oldDump, urlOf(dbs.live)]);
    await grants(live, 40, 40);
    await live.ledger.checkpoint();
    await live.ledger.publishAnchors();
    const newDump = join(dir, "new.dump");
    await sh(["pg_dump", "-Fc", "-f", newDump, urlOf(dbs.live)]);
    await live.close();
    const lines = readFileSync(anchorFile, "utf8").trim().split("\n");
    const saved = JSON.parse(lines.at(-1) as string) as { size: number; root: string; note: string };
    expect(saved.size).toBe(80);

    for (const [db, dump] of [
      [dbs.new, newDump],
      [dbs.old, oldDump],
    ] as const) {
      await admin.unsafe(`create database ${db}`);
      await sh(["pg_restore", "--no-owner", "-d", urlOf(db), dump]);
      const verify = await run([process.execPath, join(repoRoot, "bin/potluck.mjs"), "ledger", "verify"], {
        env: { ...process.env, DATABASE_URL: urlOf(db), POTLUCK_LEDGER_KEY_FILE: keyFile },
        timeoutMs: 120_000,
      });
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toMatch(/^ledger verifies: /);
    }

    // The saved checkpoint: the current backup has it, byte for byte; the older one does not.
    const restored = await ledgerOn(dbs.new);
    const stale = await ledgerOn(dbs.old);
    try {
      const res = await restored.app.request(`/v1/log/checkpoints/${saved.size}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ size: saved.size, root: saved.root, note: saved.note });
      expect((await stale.app.request(`/v1/log/checkpoints/${saved.size}`)).status).toBe(404);
    } finally {
      await restored.close();
      await stale.close();
    }
  }, 300_000);
});
