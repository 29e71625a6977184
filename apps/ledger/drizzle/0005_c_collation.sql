-- Byte-order ("C") collation on every key the append path and the snapshot compare. The cluster's
-- default here is libc C.UTF-8, which PostgreSQL 15 does not treat as C: every index comparison
-- on these columns goes through strcoll() and sorts cannot use abbreviated keys. "C" compares with
-- memcmp, which is also exactly the order the snapshot tree needs (account bytes), so the balances
-- primary key now yields the snapshot's order without a sort. No row changes; only the indexes
-- on these columns are rebuilt.
ALTER TABLE "entries" ALTER COLUMN "event_id" TYPE text COLLATE "C", ALTER COLUMN "account" TYPE text COLLATE "C", ALTER COLUMN "ref" TYPE text COLLATE "C", ALTER COLUMN "kind" TYPE text COLLATE "C", ALTER COLUMN "payload_hash" TYPE text COLLATE "C", ALTER COLUMN "prev_hash" TYPE text COLLATE "C", ALTER COLUMN "hash" TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "balances" ALTER COLUMN "account" TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "head" ALTER COLUMN "last_hash" TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "rejections" ALTER COLUMN "event_id" TYPE text COLLATE "C";
