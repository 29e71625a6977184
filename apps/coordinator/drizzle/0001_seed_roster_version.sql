-- The roster version starts at 0; every roster change bumps it in the same transaction.
INSERT INTO "roster_version" ("id", "version") VALUES (1, 0) ON CONFLICT ("id") DO NOTHING;
