-- Entries are append-only and must extend the chain; the database refuses anything else, so a
-- bug (or a second ledger process) cannot fork, gap or rewrite history through the application.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger: % on % refused: the table is append-only', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;
--> statement-breakpoint
CREATE TRIGGER entries_no_update_delete BEFORE UPDATE OR DELETE ON entries FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
--> statement-breakpoint
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
--> statement-breakpoint
CREATE TRIGGER checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON checkpoints FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
--> statement-breakpoint
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
--> statement-breakpoint
-- Rows inserted earlier in the same statement are visible to a BEFORE ROW trigger, so a batch
-- of many entries in one INSERT is checked link by link.
CREATE FUNCTION ledger_check_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq = 0 THEN
    IF NEW.prev_hash <> repeat('0', 64) THEN
      RAISE EXCEPTION 'ledger: entry 0 must start from the genesis hash' USING ERRCODE = 'check_violation';
    END IF;
  ELSIF NOT EXISTS (SELECT 1 FROM entries WHERE seq = NEW.seq - 1 AND hash = NEW.prev_hash) THEN
    RAISE EXCEPTION 'ledger: entry % does not extend the chain (no entry % with hash %)', NEW.seq, NEW.seq - 1, NEW.prev_hash USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER entries_extend_chain BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION ledger_check_link();
--> statement-breakpoint
INSERT INTO head (id, size, last_hash) VALUES (1, 0, repeat('0', 64));
