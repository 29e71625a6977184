import { sql } from "drizzle-orm";
import { bigint, boolean, check, integer, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/**
 * The coordinator's tables. Migrations under ../../drizzle are generated from this file by
 * drizzle-kit and are append-only: change the schema here, run `npx drizzle-kit generate` in
 * apps/coordinator, commit the new migration, never edit an old one.
 */

/** Join tokens, stored only as their SHA-256 so a database dump enrolls nobody. */
export const joinTokens = pgTable("join_tokens", {
  id: text("id").primaryKey(),
  tokenHash: text("token_hash").notNull().unique(),
  owner: text("owner"),
  reusable: boolean("reusable").notNull().default(false),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull(),
  expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  /** First use; a single-use token with this set is spent. */
  usedAt: timestamp("used_at", { withTimezone: true, mode: "date" }),
  uses: integer("uses").notNull().default(0),
});

/**
 * Enrolled machines. `meshIndex` is the offset inside 100.64.0.0/10; its unique constraint is
 * what makes two machines on one address impossible, whatever the allocator does.
 */
export const machines = pgTable(
  "machines",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull().unique(),
    owner: text("owner").notNull(),
    meshIndex: integer("mesh_index").notNull().unique(),
    wireguardPublicKey: text("wireguard_public_key").notNull().unique(),
    identityPublicKey: text("identity_public_key").notNull(),
    endpoints: jsonb("endpoints").$type<string[]>().notNull(),
    enrolledAt: timestamp("enrolled_at", { withTimezone: true, mode: "date" }).notNull(),
    keyRotatedAt: timestamp("key_rotated_at", { withTimezone: true, mode: "date" }),
    /** Coordinator receive time of the last heartbeat, flushed in batches (the live value is in memory). */
    lastHeartbeatAt: timestamp("last_heartbeat_at", { withTimezone: true, mode: "date" }),
    /** The WireGuard key the machine last reported in a heartbeat. */
    reportedWireguardKey: text("reported_wireguard_key"),
  },
  (t) => [check("mesh_index_in_range", sql`${t.meshIndex} between 1 and 4194302`)],
);

/** One row: the roster version, bumped in the same transaction as every roster change. */
export const rosterVersion = pgTable(
  "roster_version",
  {
    id: integer("id").primaryKey(),
    version: bigint("version", { mode: "number" }).notNull(),
  },
  (t) => [check("roster_version_one_row", sql`${t.id} = 1`)],
);
