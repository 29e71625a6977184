// Bench: what one enrollment costs as the roster grows. Coordinators run in-process on a database
// of the bench's own on the shared PostgreSQL; the roster is filled to each size by writing rows
// straight into it (tools/src/lab/sim-seed.ts), then --samples real enrollments are timed through
// the HTTP app (a join token each, not timed). Every enrollment answers with the whole roster, so
// its cost grows with the roster; with --coordinators 2 enrollments alternate between two
// coordinators on one database, as in the cluster, and each then finds the roster version moved
// by the other and reloads the machines table first.
//
//   node --import tsx tools/bench/coordinator/enroll-cost.ts [--sizes 100,1000,3000] [--samples 30]
//     [--coordinators 1|2]
//
// Prints a table: wall and CPU ms per enrollment (the CPU of this process: coordinator and
// client), the answer's size, and GET /v1/roster alone for comparison.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildCoordinatorApp,
  CoordinatorState,
  loadOrCreateCoordinatorKey,
  openDatabase,
  type CoordinatorApp,
  type OpenedDatabase,
} from "@potluck/coordinator";
import { coordinatorKeyFingerprint, generateIdentity } from "@potluck/peer";
import { CoordinatorLimits } from "@potluck/protocol";
import postgres from "postgres";
import { seedSimMachines } from "../../src/lab/index.js";
import { benchFlags } from "../common/args.js";

const { flags } = benchFlags(process.argv.slice(2), { strings: ["sizes", "samples", "coordinators"] });
const sizes = (flags.get("sizes") ?? "100,1000,3000").split(",").map(Number);
const samples = Number(flags.get("samples") ?? 30);
const coordinatorsN = Number(flags.get("coordinators") ?? 1);
if (!(Number.isInteger(samples) && samples >= 1 && samples <= 1_000))
  usage(`--samples: expected 1..1000, got ${flags.get("samples")}`);
// Each size is filled up to from the one before plus the machines enrolled there.
if (!sizes.every((s, i) => Number.isInteger(s) && s >= 1 && s > (sizes[i - 1] ?? -samples) + samples))
  usage(`--sizes: expected whole numbers, each more than --samples above the one before, got ${flags.get("sizes")}`);
if ((sizes.at(-1) ?? 0) + samples * sizes.length > CoordinatorLimits.rosterMachinesMax)
  usage(`--sizes: the largest size plus the enrolled samples must stay within ${CoordinatorLimits.rosterMachinesMax}`);
if (coordinatorsN !== 1 && coordinatorsN !== 2)
  usage(`--coordinators: expected 1 or 2, got ${flags.get("coordinators")}`);

const base = process.env.POTLUCK_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432";
const dbName = `bench_enroll_${randomBytes(4).toString("hex")}`;
const admin = postgres(`${base}/postgres`, { max: 1, onnotice: () => undefined });
await admin.unsafe(`create database ${dbName}`);
const dir = mkdtempSync(join(tmpdir(), "potluck-enroll-cost-"));
const adminSecret = randomBytes(24).toString("hex");
try {
  const key = loadOrCreateCoordinatorKey(dir);
  const coordinators: Array<{ database: OpenedDatabase; app: CoordinatorApp }> = [];
  for (let i = 0; i < coordinatorsN; i++) {
    const database = await openDatabase({ databaseUrl: `${base}/${dbName}`, dataDir: dir });
    const keyFingerprint = coordinatorKeyFingerprint(key.publicKey);
    const state = await CoordinatorState.open({ db: database.db, keyFingerprint });
    coordinators.push({
      database,
      app: buildCoordinatorApp({ startedAt: Date.now(), state, adminSecret, signingKey: key }),
    });
  }
  let rosterN = 0;
  let enrolled = 0;
  const rows = [];
  for (const size of sizes) {
    const fill = Array.from({ length: size - rosterN }, (_, i) => ({ name: `s${rosterN + i}`, owner: "home" }));
    await seedSimMachines(`${base}/${dbName}`, fill);
    rosterN = size;
    await enrollOne(0); // the first after seeding reloads the roster: not counted
    let wallMs = 0;
    let cpuMs = 0;
    let answerBytes = 0;
    for (let i = 0; i < samples; i++) {
      const m = await enrollOne(i);
      wallMs += m.wallMs;
      cpuMs += m.cpuMs;
      answerBytes = m.bytes;
    }
    const r0 = performance.now();
    for (let i = 0; i < 10; i++) await (await coordinators[0]?.app.request("/v1/roster"))?.arrayBuffer();
    rows.push({
      roster: size,
      "ms per enrollment": (wallMs / samples).toFixed(1),
      "CPU ms per enrollment": (cpuMs / samples).toFixed(1),
      "answer KB": (answerBytes / 1024).toFixed(0),
      "ms per GET /v1/roster": ((performance.now() - r0) / 10).toFixed(1),
    });
  }
  console.table(rows);
  for (const c of coordinators) await c.database.close();

  async function enrollOne(i: number): Promise<{ wallMs: number; cpuMs: number; bytes: number }> {
    const app = coordinators[i % coordinators.length]?.app;
    if (app === undefined) throw new Error("no coordinator");
    const tokenRes = await app.request("/v1/tokens", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminSecret}` },
      body: "{}",
    });
    const { token } = (await tokenRes.json()) as { token: string };
    const body = JSON.stringify({
      token,
      name: `e${enrolled++}`,
      wireguardPublicKey: randomBytes(32).toString("base64"),
      identityPublicKey: generateIdentity().publicKey,
    });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const res = await app.request("/v1/enroll", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const answer = await res.arrayBuffer();
    const cpu = process.cpuUsage(c0);
    if (res.status !== 201)
      throw new Error(`enrolling: HTTP ${res.status} ${Buffer.from(answer).toString().slice(0, 300)}`);
    rosterN++;
    return { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, bytes: answer.byteLength };
  }
} finally {
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}

function usage(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}
