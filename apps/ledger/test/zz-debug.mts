import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createTestDb, rawSql } from "/work/main/apps/ledger/test/helpers/db.ts";
import { spawnLedger, killHard } from "/work/main/apps/ledger/test/helpers/proc.ts";
import { publishUsage, ensureUsageStream } from "/work/main/apps/ledger/src/ingest/jetstream.ts";
const db = await createTestDb();
const prefix = "tdbg" + Math.floor(Math.random()*1e6);
const nc = await connect({ servers: "nats://127.0.0.1:4222" });
await ensureUsageStream(nc, prefix, "ledger");
const js = jetstream(nc);
const N = 20000;
let t = Date.now();
const ps = [];
for (let i = 0; i < N; i++) { ps.push(publishUsage(js, prefix, { eventId: `e${i}`, jobId: "j", kind: "earn", account: "a" + (i % 100), counterparty: "b", servedBy: "m", model: "x", tokens: 1, amount: 1, at: new Date().toISOString() })); if (ps.length >= 500) { await Promise.all(ps); ps.length = 0; } }
await Promise.all(ps);
console.log("published", N, Date.now() - t, "ms");
const p = spawnLedger({ DATABASE_URL: db.url, POTLUCK_DATA_DIR: "/tmp/ldbg", POTLUCK_NATS_PREFIX: prefix, POTLUCK_LEDGER_PORT: String(20000 + Math.floor(Math.random() * 30000)), POTLUCK_BIND: "127.0.0.1", POTLUCK_LEDGER_BATCH_MAX: process.env.B ?? "1000" });
const sql = rawSql(db.url);
t = Date.now(); let first = 0;
for (let k = 0; k < 600; k++) { await new Promise(r => setTimeout(r, 200)); const n = Number((await sql`select count(*) from entries`.catch(() => [{count: 0}]))[0].count); if (n > 0 && !first) { first = Date.now(); } if (n >= N) { console.log("applied", n, "in", Date.now() - first, "ms after first"); break; } }
await killHard(p.child).catch(()=>{});
await sql.end(); await nc.close(); await db.drop();
