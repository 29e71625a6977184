import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import * as schema from "./schema.js";

export type LedgerDb = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface OpenedDb {
  db: LedgerDb;
  kind: "postgres" | "pglite";
  close(): Promise<void>;
}

export const migrationsFolder = fileURLToPath(new URL("../../drizzle", import.meta.url));

/** Any 64-bit number private to the ledger: serializes migrations when several processes start at once. */
const MIGRATION_LOCK_ID = 0x504c4c47;
/** Connections per process; appends hold one at a time, reads share the rest. */
const POOL_CONNECTIONS_MAX = 8;

/**
 * Opens the ledger's database and brings its schema up to date (idempotent: applied migrations
 * are skipped). PostgreSQL when `databaseUrl` is set, else embedded PGlite under `dataDir`.
 * `readOnly` (what `potluck ledger verify` uses) runs no migration and, on PostgreSQL, opens
 * every transaction read-only: it works for a role with nothing but SELECT, and cannot change
 * the database it was given to check.
 */
export async function openLedgerDb(options: {
  databaseUrl?: string;
  dataDir: string;
  readOnly?: boolean;
}): Promise<OpenedDb> {
  if (options.databaseUrl !== undefined)
    return options.readOnly === true ? openPostgresReadOnly(options.databaseUrl) : openPostgres(options.databaseUrl);
  const dir = join(options.dataDir, "ledger-pglite");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const client = new PGlite(dir);
  const db = drizzlePglite(client, { schema });
  if (options.readOnly === true) return { db: db as unknown as LedgerDb, kind: "pglite", close: () => client.close() };
  try {
    await migratePglite(db, { migrationsFolder });
  } catch (error) {
    await client.close();
    throw new Error(`migrating the embedded ledger database in ${dir}: ${(error as Error).message}`, { cause: error });
  }
  return { db: db as unknown as LedgerDb, kind: "pglite", close: () => client.close() };
}

function openPostgresReadOnly(url: string): OpenedDb {
  const client = postgres(url, {
    max: 1,
    onnotice: () => undefined,
    connection: { default_transaction_read_only: true },
  });
  return {
    db: drizzlePostgres(client, { schema }) as unknown as LedgerDb,
    kind: "postgres",
    close: () => client.end({ timeout: 5 }),
  };
}

async function openPostgres(url: string): Promise<OpenedDb> {
  const client = postgres(url, { max: POOL_CONNECTIONS_MAX, onnotice: () => undefined });
  const db = drizzlePostgres(client, { schema });
  try {
    const lock = await client.reserve();
    try {
      await lock`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
      await migratePostgres(db, { migrationsFolder });
    } finally {
      await lock`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`.catch(() => undefined);
      lock.release();
    }
  } catch (error) {
    await client.end({ timeout: 5 });
    throw new Error(`migrating the ledger database: ${(error as Error).message}`, { cause: error });
  }
  return { db: db as unknown as LedgerDb, kind: "postgres", close: () => client.end({ timeout: 5 }) };
}
