import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { grantPath, publishUsage, signGrant } from "@potluck/ledger";
import { subjectsFor, type UsageEvent } from "@potluck/protocol";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pollUntil, run } from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";
import { publicKeyToBase64 } from "@potluck/peer";

// Two ledger processes ingest from the same durable consumer into one PostgreSQL chain. One of
// them ("faulty") loses every acknowledgement after its database commit: its NATS user may not
// publish to $JS.ACK.> (the server refuses each ack), so everything it commits is redelivered,
// to it or to the other ledger, after the ack wait. The other ledger is killed (SIGKILL) for a
// while, so the faulty one commits alone, then comes back and both append at once. The head-row
// lock and the event-id check must keep one chain: every event exactly once, and `potluck ledger
// verify` replays it.
const ackWaitS = 2;
const events = 600;
const publishEveryMs = 25;
const startMs = 240_000;

const dir = mkdtempSync(join(tmpdir(), "potluck-ackfault-"));
const db = `ackfault_${randomBytes(4).toString("hex")}`;
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const dbUrl = adminUrl.replace(/\/[^/]*$/, `/${db}`);
const prefix = `af${randomBytes(4).toString("hex")}`;
const writeToken = randomBytes(24).toString("hex");
const householdAdmin = generateKeyPairSync("ed25519");
const keyFile = join(dir, "ledger.key");
const procs: ChildProcess[] = [];
let natsPort = 0;
let nc: NatsConnection;
let admin: postgres.Sql;
let sql: postgres.Sql;

interface Proc {
  child: ChildProcess;
  output: () => string;
}

function start(name: string, argv: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Proc> {
  const child = spawn(argv[0] as string, argv.slice(1), { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  procs.push(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  child.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (ready.test(out)) {
        clearInterval(timer);
        resolve({ child, output: () => out });
      }
    }, 100);
    child.once("exit", (code) => {
      clearInterval(timer);
      reject(new Error(`${name} exited ${code}: ${out.slice(-3000)}`));
    });
    setTimeout(() => {
      clearInterval(timer);
      reject(new Error(`${name} not ready within ${startMs / 1000} s: ${out.slice(-3000)}`));
    }, startMs);
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function startLedger(name: string, user: string): Promise<Proc & { port: number }> {
  return freePort().then((port) =>
    start(
      name,
      [process.execPath, "--import", "tsx", serviceEntry.ledger],
      {
        ...process.env,
        DATABASE_URL: dbUrl,
        POTLUCK_DATA_DIR: join(dir, name),
        POTLUCK_LEDGER_KEY_FILE: keyFile,
        POTLUCK_LEDGER_PORT: String(port),
        POTLUCK_BIND: "127.0.0.1",
        POTLUCK_NATS_URL: `nats://${user}:pw-${user}@127.0.0.1:${natsPort}`,
        POTLUCK_NATS_PREFIX: prefix,
        POTLUCK_LEDGER_ACK_WAIT: String(ackWaitS),
        POTLUCK_LEDGER_BATCH_MAX: "20",
        POTLUCK_LEDGER_WRITE_TOKEN: writeToken,
        POTLUCK_COORDINATOR_URL: undefined,
        // The household admin's key: the ledgers take grants signed with it, and only those.
        POTLUCK_COORDINATOR_KEY: publicKeyToBase64(householdAdmin.publicKey),
      },
      /ledger listening/,
    ).then((p) => Object.assign(p, { port })),
  );
}

beforeAll(async () => {
  natsPort = await freePort();
  const conf = join(dir, "nats.conf");
  writeFileSync(
    conf,
    `listen: "127.0.0.1:${natsPort}"
jetstream { store_dir: "${join(dir, "js")}" }
authorization { users: [
  { user: "ok", password: "pw-ok" },
  { user: "faulty", password: "pw-faulty", permissions: { publish: { deny: ["$JS.ACK.>"] } } }
] }
`,
  );
  await start("nats", ["/usr/sbin/nats-server", "-c", conf], process.env, /Server is ready/);
  admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${db}`);
  sql = postgres(dbUrl, { max: 2, onnotice: () => undefined });
  nc = await connect({ servers: `127.0.0.1:${natsPort}`, user: "ok", pass: "pw-ok" });
}, startMs);

afterAll(async () => {
  for (const p of procs)
    if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) process.kill(-p.pid, "SIGKILL");
  await nc?.close().catch(() => undefined);
  await sql?.end({ timeout: 5 }).catch(() => undefined);
  await admin?.unsafe(`drop database if exists ${db} with (force)`).catch(() => undefined);
  await admin?.end({ timeout: 5 }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function chainOf(ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await sql<{ event_id: string; n: string }[]>`
    select event_id, count(*) as n from entries where event_id = any(${ids as string[]}) group by event_id`;
  return new Map(rows.map((r) => [r.event_id, Number(r.n)]));
}

describe("two ledgers on one durable consumer, acks lost after the commit", () => {
  it("never fork the chain and apply every event exactly once", async () => {
    // The healthy ledger first: it creates the stream, the consumer and the shared key file.
    const healthy = await startLedger("healthy", "ok");
    const faulty = await startLedger("faulty", "faulty");
    const grantBody = JSON.stringify({
      kind: "adjust",
      eventId: "grant-home",
      account: "home",
      delta: 1_000_000,
      reason: "t",
    });
    const grant = await fetch(`http://127.0.0.1:${healthy.port}${grantPath}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...signGrant(grantBody, householdAdmin.privateKey) },
      body: grantBody,
    });
    expect(grant.status, await grant.text()).toBeLessThan(300);

    const js = jetstream(nc);
    const ids: string[] = [];
    const publishing = (async () => {
      for (let i = 0; i < events; i++) {
        const ev: UsageEvent = {
          eventId: `af-${i}`,
          jobId: `job-${i}`,
          kind: "spend",
          account: "home",
          counterparty: "guest",
          servedBy: "guest-box",
          model: "tiny",
          tokens: 1,
          amount: 1,
          at: new Date().toISOString(),
        };
        await publishUsage(js, prefix, ev);
        ids.push(ev.eventId);
        await new Promise((r) => setTimeout(r, publishEveryMs));
      }
    })();

    // The healthy ledger dies: the faulty one now commits alone, and acknowledges nothing.
    await new Promise((r) => setTimeout(r, 3_000));
    process.kill(-(healthy.child.pid as number), "SIGKILL");
    const jsm = await jetstreamManager(nc);
    const stream = subjectsFor(prefix).usageStream.name;
    const before = (await chainOf(ids.slice())).size;
    const ackFloorBefore = (await jsm.consumers.info(stream, "ledger")).ack_floor.stream_seq;
    await new Promise((r) => setTimeout(r, 6_000));
    const alone = (await chainOf(ids.slice())).size;
    const ackFloorAlone = (await jsm.consumers.info(stream, "ledger")).ack_floor.stream_seq;
    expect(alone, faulty.output().slice(-2000)).toBeGreaterThan(before);
    expect(ackFloorAlone).toBe(ackFloorBefore);

    // Back: both append at once, the healthy one taking the faulty one's redeliveries.
    const back = await startLedger("healthy2", "ok");
    await publishing;
    let chained = new Map<string, number>();
    const all = await pollUntil(
      async () => {
        chained = await chainOf(ids);
        return chained.size === ids.length;
      },
      { timeoutMs: 180_000, intervalMs: 1_000 },
    );
    expect(all, back.output().slice(-2000)).toBe(true);
    expect([...chained.values()].every((n) => n === 1)).toBe(true);
    const info = await jsm.consumers.info(stream, "ledger");
    expect(info.num_redelivered).toBeGreaterThan(0);
    const refused = await sql`select count(*)::int as n from rejections`;
    expect(refused[0]?.n).toBe(0);

    const verify = await run([process.execPath, join(repoRoot, "bin/potluck.mjs"), "ledger", "verify"], {
      env: { ...process.env, DATABASE_URL: dbUrl, POTLUCK_LEDGER_KEY_FILE: keyFile },
      timeoutMs: 300_000,
    });
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    console.log(
      `ack fault: ${ids.length} events exactly once; ${alone - before} committed by the faulty ledger alone with the ack floor unmoved; ${info.num_redelivered} redelivered; ${verify.stdout.trim()}`,
    );
  }, 900_000);
});
