import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/open.js";
import { createTestDatabase, tempDir } from "./support.js";

// The drizzle-kit migrations apply cleanly and a second application changes nothing, on real
// Postgres and on embedded PGlite alike.
const dir = tempDir("potluck-coord-migrate-");
afterAll(() => dir.remove());

async function tablesAndVersion(db: Awaited<ReturnType<typeof openDatabase>>["db"]) {
  const tables = await db.execute(
    sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
  );
  const rows = (Array.isArray(tables) ? tables : (tables as unknown as { rows: unknown[] }).rows) as Array<{
    table_name: string;
  }>;
  const version = await db.execute(sql`select version from roster_version`);
  const vrows = (Array.isArray(version) ? version : (version as unknown as { rows: unknown[] }).rows) as Array<{
    version: unknown;
  }>;
  return { tables: rows.map((r) => r.table_name), versions: vrows.map((r) => Number(r.version)) };
}

describe("migrations", () => {
  it("apply twice on Postgres without error or change", async () => {
    const pg = await createTestDatabase();
    try {
      const opened = await openDatabase({ databaseUrl: pg.url, dataDir: dir.path });
      const first = await tablesAndVersion(opened.db);
      await opened.migrate();
      const second = await tablesAndVersion(opened.db);
      await opened.close();
      const reopened = await openDatabase({ databaseUrl: pg.url, dataDir: dir.path });
      const third = await tablesAndVersion(reopened.db);
      await reopened.close();
      expect(first.tables).toEqual(["join_tokens", "machines", "roster_version"]);
      expect(first.versions).toEqual([0]);
      expect(second).toEqual(first);
      expect(third).toEqual(first);
    } finally {
      await pg.drop();
    }
  });

  it("apply once when several coordinators start side by side on one Postgres", async () => {
    const pg = await createTestDatabase();
    try {
      const opened = await Promise.all([1, 2, 3].map(() => openDatabase({ databaseUrl: pg.url, dataDir: dir.path })));
      const results = await Promise.all(opened.map((o) => tablesAndVersion(o.db)));
      await Promise.all(opened.map((o) => o.close()));
      for (const r of results)
        expect(r).toEqual({ tables: ["join_tokens", "machines", "roster_version"], versions: [0] });
    } finally {
      await pg.drop();
    }
  });

  it("apply twice on PGlite with the same result", async () => {
    const opened = await openDatabase({ dataDir: dir.path });
    const first = await tablesAndVersion(opened.db);
    await opened.migrate();
    expect(await tablesAndVersion(opened.db)).toEqual(first);
    expect(first.tables).toEqual(["join_tokens", "machines", "roster_version"]);
    await opened.close();
  });
});
