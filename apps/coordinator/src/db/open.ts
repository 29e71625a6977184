import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import * as schema from "./schema.js";

/** The drizzle database the state object uses; the same type over Postgres and PGlite. */
export type CoordinatorDb = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface OpenedDatabase {
  db: CoordinatorDb;
  kind: "postgres" | "pglite";
  /** Applies every migration not yet applied; safe to call any number of times. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

/** The generated migrations, shipped with the source (apps/coordinator/drizzle). */
export const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "drizzle");

/** Connections the coordinator holds to Postgres; enrollments serialize on a lock anyway. */
const postgresPoolMax = 10;

/**
 * Opens Postgres when `databaseUrl` is set, else embedded PGlite under `dataDir`, and applies
 * the migrations: both run the same schema and the same migration files.
 */
export async function openDatabase(options: { databaseUrl?: string; dataDir: string }): Promise<OpenedDatabase> {
  const opened = options.databaseUrl === undefined ? openPglite(options.dataDir) : openPostgres(options.databaseUrl);
  try {
    await opened.migrate();
  } catch (error) {
    await opened.close().catch(() => undefined);
    throw new Error(
      `applying coordinator migrations (${opened.kind}): ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return opened;
}

/** Session lock that serializes migrations of coordinators starting side by side on one database. */
const migrationLockKey = 0x706c_6b00;

function openPostgres(url: string): OpenedDatabase {
  // Notices ("relation already exists, skipping") are noise on every start-up.
  const client = postgres(url, { max: postgresPoolMax, onnotice: () => undefined });
  const db = drizzlePostgres(client, { schema });
  return {
    db: db as unknown as CoordinatorDb,
    kind: "postgres",
    async migrate() {
      // A one-connection client holds the session lock and runs the migrations on that same
      // connection, so a second coordinator waits and then finds nothing left to apply.
      const single = postgres(url, { max: 1, onnotice: () => undefined });
      try {
        await single`select pg_advisory_lock(${migrationLockKey})`;
        await migratePostgres(drizzlePostgres(single, { schema }), { migrationsFolder });
      } finally {
        await single.end({ timeout: 5 }); // ending the session releases the lock
      }
    },
    close: () => client.end({ timeout: 5 }),
  };
}

function openPglite(dataDir: string): OpenedDatabase {
  const dir = join(dataDir, "coordinator", "pglite");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const client = new PGlite(dir);
  const db = drizzlePglite(client, { schema });
  return {
    db: db as unknown as CoordinatorDb,
    kind: "pglite",
    migrate: () => migratePglite(db, { migrationsFolder }),
    close: () => client.close(),
  };
}
