import { CoordinatorLimits } from "@potluck/protocol";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, tempDir, testCoordinator } from "./support.js";

// A roster at its limit refuses the next enrollment by name, and spends no token: the roster is
// read up to CoordinatorLimits.rosterMachinesMax machines, so one more would silently be on none.
const dir = tempDir("potluck-coord-limit-");
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let t: Awaited<ReturnType<typeof testCoordinator>>;

beforeAll(async () => {
  db = await createTestDatabase();
  t = await testCoordinator({ databaseUrl: db.url, dataDir: dir.path });
});
afterAll(async () => {
  await t?.database.close();
  await db?.drop();
  dir.remove();
});

/** Fills the roster to `n` machines in one statement, as enrollments would have left it. */
async function fillRoster(n: number): Promise<void> {
  const sql = postgres(db.url, { max: 1, onnotice: () => undefined });
  try {
    await sql`insert into machines (id, name, owner, mesh_index, wireguard_public_key, identity_public_key, endpoints, enrolled_at)
      select 'fill-' || i, 'fill-' || i, 'home', i + 1, 'wg-' || i, 'id-' || i, '[]'::jsonb, now()
      from generate_series(1, ${n}) as i`;
  } finally {
    await sql.end();
  }
}

describe("the roster's limit", () => {
  it("refuses the enrollment past it with 409 roster_full, and the token stays unused", async () => {
    const token = await t.createToken();
    await fillRoster(CoordinatorLimits.rosterMachinesMax);
    const refused = await t.enroll({ token, name: "one-too-many" });
    expect(refused.status).toBe(409);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("roster_full");
    expect(body.error.message).toMatch(/limit of 10000 machines/);
    // Room again: the same token enrolls, so the refusal spent nothing.
    const sql = postgres(db.url, { max: 1, onnotice: () => undefined });
    await sql`delete from machines where name = 'fill-1'`.finally(() => sql.end());
    expect((await t.enroll({ token, name: "one-too-many" })).status).toBe(201);
  }, 60_000);
});
