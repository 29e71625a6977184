-- Balances and the head are state derived from the entries, kept in the append's transaction
-- because the rules read them under the head lock (re-deriving them from the entries on every
-- batch would cost a scan of the log). An ordinary write to them would change what the next
-- snapshot signs, so it is refused unless the append path (or a snapshot) has marked its own
-- transaction with the transaction-local setting potluck.ledger_append. A role that can set it
-- can also drop triggers; `potluck ledger verify` still catches that (it re-derives both).
CREATE FUNCTION ledger_refuse_direct_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('potluck.ledger_append', true), '') <> 'on' THEN
    RAISE EXCEPTION 'ledger: % on % refused: balances and the head change only through the ledger''s append path', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER balances_append_path_only BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON balances FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_direct_write();
--> statement-breakpoint
CREATE TRIGGER head_append_path_only BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON head FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_direct_write();
--> statement-breakpoint
-- The rules keep every balance within LedgerAmounts (libs/protocol ledger.ts); the database says
-- so too. NOT VALID: rows written before this migration are left to `verify`, new ones are checked.
ALTER TABLE balances ADD CONSTRAINT balances_within_limits CHECK (balance >= 0 AND balance <= 1000000000000000 AND held >= 0 AND held <= balance) NOT VALID;
--> statement-breakpoint
-- Usage messages that could not be applied (malformed, or an append that failed for them alone):
-- acknowledged so later batches flow, and kept here for the operator (`potluck ledger parked`).
CREATE TABLE parked (
  id bigserial PRIMARY KEY,
  stream_seq bigint NOT NULL,
  subject text NOT NULL,
  event_id text NOT NULL,
  reason text NOT NULL,
  payload text NOT NULL,
  at timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX parked_stream_seq ON parked USING btree (stream_seq);
