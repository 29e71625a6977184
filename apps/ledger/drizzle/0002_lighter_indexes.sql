DROP INDEX "entries_hash";--> statement-breakpoint
DROP INDEX "entries_ref";--> statement-breakpoint
CREATE INDEX "entries_ref_set" ON "entries" USING btree ("ref") WHERE ref <> '';