-- The chain-link check moves from a per-row BEFORE trigger (one plpgsql call and one index probe
-- per entry) to one set-based check per INSERT statement over its transition table: a batch of a
-- thousand entries is checked with a single join. Same rule: every new entry must follow the
-- entry before it (by sequence number and hash), and entry 0 must start from the genesis hash.
CREATE FUNCTION ledger_check_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad bigint;
BEGIN
  SELECT n.seq INTO bad
    FROM new_entries n
    LEFT JOIN entries p ON p.seq = n.seq - 1 AND p.hash = n.prev_hash
   WHERE (n.seq = 0 AND n.prev_hash <> repeat('0', 64)) OR (n.seq > 0 AND p.seq IS NULL)
   ORDER BY n.seq
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: entry % does not extend the chain', bad USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER entries_extend_chain_batch AFTER INSERT ON entries REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_links();
--> statement-breakpoint
DROP TRIGGER entries_extend_chain ON entries;
