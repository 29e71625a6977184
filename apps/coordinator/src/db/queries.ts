import { asc, eq, sql } from "drizzle-orm";
import type { CoordinatorDb } from "./open.js";
import { machines, rosterVersion } from "./schema.js";

export type MachineRow = typeof machines.$inferSelect;
/** A drizzle transaction handle; the same shape over Postgres and PGlite. */
export type CoordinatorTx = Parameters<Parameters<CoordinatorDb["transaction"]>[0]>[0];

/**
 * Every enrollment takes this transaction-scoped advisory lock, so address allocation and token
 * spending are serial across all coordinator processes sharing one database. The unique
 * constraints stay as the last line of defence.
 */
export const enrollLockKey = 0x706c_6b01; // "plk" + 1

export async function lockEnrollment(tx: CoordinatorTx): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${enrollLockKey})`);
}

/** Machines on the roster now, inside the enrollment lock: enrollment refuses one past the roster's limit. */
export async function countMachines(tx: CoordinatorTx): Promise<number> {
  const rows = rowsOf(await tx.execute(sql`select count(*)::int as n from ${machines}`));
  return Number(rows[0]?.n ?? 0);
}

/** The lowest free mesh offset (1-based), so addresses of removed machines are reused first. */
export async function lowestFreeMeshIndex(tx: CoordinatorTx): Promise<number> {
  const result = await tx.execute(sql`
    select case
      when not exists (select 1 from ${machines} where ${machines.meshIndex} = 1) then 1
      else (select min(m.mesh_index) + 1 from ${machines} m
            where not exists (select 1 from ${machines} n where n.mesh_index = m.mesh_index + 1))
    end as idx`);
  const rows = rowsOf(result);
  return Number(rows[0]?.idx);
}

export async function bumpRosterVersion(tx: CoordinatorTx): Promise<number> {
  const [row] = await tx
    .update(rosterVersion)
    .set({ version: sql`${rosterVersion.version} + 1` })
    .where(eq(rosterVersion.id, 1))
    .returning({ version: rosterVersion.version });
  if (row === undefined) throw new Error("roster_version row missing; migrations were not applied");
  return row.version;
}

export async function readRosterVersion(db: CoordinatorDb | CoordinatorTx): Promise<number> {
  const [row] = await db.select({ version: rosterVersion.version }).from(rosterVersion).where(eq(rosterVersion.id, 1));
  if (row === undefined) throw new Error("roster_version row missing; migrations were not applied");
  return row.version;
}

export async function readMachines(db: CoordinatorDb | CoordinatorTx, limit: number): Promise<MachineRow[]> {
  return db.select().from(machines).orderBy(asc(machines.meshIndex)).limit(limit);
}

/** Writes heartbeat receive times in one statement; rows for removed machines match nothing. */
export async function writeHeartbeats(
  db: CoordinatorDb,
  beats: ReadonlyArray<{ machine: string; receivedAtMs: number; wireguardPublicKey: string }>,
): Promise<void> {
  if (beats.length === 0) return;
  const values = sql.join(
    beats.map(
      (b) => sql`(${b.machine}, ${new Date(b.receivedAtMs).toISOString()}::timestamptz, ${b.wireguardPublicKey})`,
    ),
    sql`, `,
  );
  await db.execute(sql`
    update ${machines} set last_heartbeat_at = v.at, reported_wireguard_key = v.key
    from (values ${values}) as v(name, at, key)
    where ${machines.name} = v.name and (${machines.lastHeartbeatAt} is null or ${machines.lastHeartbeatAt} < v.at)`);
}

/** postgres-js returns an array of rows, PGlite an object with `rows`. */
function rowsOf(result: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(result)) return result as Array<Record<string, unknown>>;
  const rows = (result as { rows?: unknown }).rows;
  return Array.isArray(rows) ? (rows as Array<Record<string, unknown>>) : [];
}
