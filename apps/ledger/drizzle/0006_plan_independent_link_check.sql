-- The chain-link check, same rule, with a cost that no longer depends on the planner. The join of
-- the new rows against the whole entries table (0003) was planned once per connection, usually
-- while the table was still empty, as a hash join over a sequential scan of entries, and kept: every
-- batch then read the whole table (a 30,000-entry ledger spent more time in this check than in
-- the insert, growing with every batch). Now the new rows are checked against each other (a sort
-- of the statement's own rows, no table access), and only the statement's first row is looked up
-- in entries: one primary-key probe, planned afresh each time (EXECUTE) so no stale plan can turn it
-- into a scan. The rule is unchanged: every new entry follows the entry before it (by sequence
-- number and hash), and entry 0 starts from the genesis hash; with the unique sequence number
-- this still refuses gaps, and with the unique previous hash, forks.
CREATE OR REPLACE FUNCTION ledger_check_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad bigint;
  first_seq bigint;
  first_prev text;
  linked boolean;
BEGIN
  SELECT x.seq INTO bad
    FROM (SELECT n.seq, n.prev_hash, lag(n.seq) OVER w AS before_seq, lag(n.hash) OVER w AS before_hash
            FROM new_entries n WINDOW w AS (ORDER BY n.seq)) x
   WHERE x.before_seq IS NOT NULL AND (x.before_seq <> x.seq - 1 OR x.before_hash <> x.prev_hash)
   ORDER BY x.seq
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: entry % does not extend the chain', bad USING ERRCODE = 'check_violation';
  END IF;
  SELECT n.seq, n.prev_hash INTO first_seq, first_prev FROM new_entries n ORDER BY n.seq LIMIT 1;
  IF first_seq IS NULL THEN
    RETURN NULL;
  ELSIF first_seq = 0 THEN
    linked := first_prev = repeat('0', 64);
  ELSE
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM entries WHERE seq = $1 AND hash = $2)' INTO linked USING first_seq - 1, first_prev;
  END IF;
  IF NOT linked THEN
    RAISE EXCEPTION 'ledger: entry % does not extend the chain', first_seq USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$$;
