import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { textArray } from "../src/ledger/append.js";
import { createTestDb, rawSql } from "./helpers/db.js";

/** The append path writes its own array literals; PostgreSQL must read back exactly the strings given. */
describe("text array literals", () => {
  let db: Awaited<ReturnType<typeof createTestDb>>;
  let sql: ReturnType<typeof rawSql>;
  beforeAll(async () => {
    db = await createTestDb();
    sql = rawSql(db.url);
  });
  afterAll(async () => {
    await sql.end();
    await db.drop();
  });

  it("round-trip any text, quotes, backslashes, braces, commas, NULL and empty strings included", async () => {
    const edge = [
      "",
      "NULL",
      "null",
      " ",
      " a ",
      '"',
      "\\",
      '\\"',
      "{}",
      "{a,b}",
      ",",
      "a,b",
      '{"jobId":"j-1","reason":"x\\"y"}',
      "é€😀",
      "\n\t",
      "\\N",
      "\\n",
      "a\u0001b",
      "\\u0041",
    ];
    const texts = fc.array(
      fc.oneof(
        fc.constantFrom(...edge),
        fc.string({ unit: "binary" }).map((s) => s.replaceAll("\u0000", "")),
      ),
      { maxLength: 20 },
    );
    await fc.assert(
      fc.asyncProperty(texts, async (values) => {
        const rows = await sql.unsafe<{ v: string }[]>("select unnest($1::text[]) as v", [textArray(values)]);
        expect(rows.map((r) => r.v)).toEqual(values);
      }),
      { numRuns: 200 },
    );
  });
});
