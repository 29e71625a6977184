import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { sql } from "drizzle-orm";
import type { LedgerDb } from "../db/open.js";
import { balanceLeafBytes, writeBalanceLeaf } from "../proof/entry.js";
import { leafHash } from "../proof/merkle.js";
import { merkleRoot } from "../proof/merkle-build.js";
import type { BalanceRow } from "./snapshot.js";

/**
 * Limits of the parallel snapshot hash. A chunk is a power of two, so every chunk is a whole
 * subtree of the RFC 9162 tree (its split points are powers of two) and the tree over the chunk
 * roots is the tree over the leaves. Below `inlineLeavesMax` the worker start-up costs more than it saves.
 */
export const SnapshotHashLimits = { chunkLeaves: 2 ** 16, workersMax: 4, inlineLeavesMax: 2 ** 17 } as const;

/**
 * Worker body as CommonJS source (eval'd), so it runs the same under tsx, vitest and plain node
 * without a loader. Input: packed leaf encodings and their end offsets; output: the chunk's root.
 */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { hash } = require("node:crypto");
const leafIn = Buffer.allocUnsafe(1 + 0xffff + 22);
const nodeIn = Buffer.allocUnsafe(65);
leafIn[0] = 0; nodeIn[0] = 1;
parentPort.on("message", ({ id, bytes, ends }) => {
  let level = new Array(ends.length);
  for (let i = 0, s = 0; i < ends.length; s = ends[i], i += 1) {
    leafIn.set(bytes.subarray(s, ends[i]), 1);
    level[i] = hash("sha256", leafIn.subarray(0, 1 + ends[i] - s), "buffer");
  }
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      nodeIn.set(level[i], 1);
      nodeIn.set(level[i + 1], 33);
      next.push(hash("sha256", nodeIn, "buffer"));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]);
    level = next;
  }
  parentPort.postMessage({ id, root: level[0] });
});
`;

/** Leaf encodings of rows[start, end) in one transferable buffer, with each leaf's end offset. */
function pack(rows: readonly BalanceRow[], start: number, end: number, asOfSize: number): { bytes: Uint8Array; ends: Uint32Array } {
  let total = 0;
  for (let i = start; i < end; i += 1) total += balanceLeafBytes((rows[i] as BalanceRow).account);
  const bytes = Buffer.from(new ArrayBuffer(total));
  const ends = new Uint32Array(end - start);
  let o = 0;
  for (let i = start; i < end; i += 1) {
    const r = rows[i] as BalanceRow;
    o = writeBalanceLeaf(bytes, o, r.account, r.balance, asOfSize);
    ends[i - start] = o;
  }
  return { bytes, ends };
}

/**
 * The snapshot root over rows already sorted by account bytes, hashed on a bounded pool of worker
 * threads (one chunk of leaves per task; the main thread packs the next chunk meanwhile). Gives
 * exactly merkleRoot(balanceLeaves(rows).leaves); small sets are hashed inline by the caller.
 */
export async function parallelSnapshotRoot(rows: readonly BalanceRow[], asOfSize: number, workersMax: number = SnapshotHashLimits.workersMax): Promise<Buffer> {
  const chunks = Math.ceil(rows.length / SnapshotHashLimits.chunkLeaves);
  const workerCount = Math.max(1, Math.min(workersMax, availableParallelism(), chunks));
  const workers = Array.from({ length: workerCount }, () => new Worker(WORKER_SOURCE, { eval: true }));
  const roots: Buffer[] = new Array<Buffer>(chunks);
  let nextChunk = 0;
  try {
    await Promise.all(
      workers.map(async (w) => {
        while (nextChunk < chunks) {
          const id = nextChunk;
          nextChunk += 1;
          const start = id * SnapshotHashLimits.chunkLeaves;
          const task = pack(rows, start, Math.min(rows.length, start + SnapshotHashLimits.chunkLeaves), asOfSize);
          roots[id] = await runTask(w, id, task);
        }
      }),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return Buffer.from(merkleRoot(roots));
}

function runTask(w: Worker, id: number, task: { bytes: Uint8Array; ends: Uint32Array }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      w.off("message", onMessage);
      w.off("error", onError);
    };
    const onMessage = (m: { id: number; root: Uint8Array }) => {
      if (m.id !== id) return;
      cleanup();
      resolve(Buffer.from(m.root));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new Error(`hashing snapshot chunk ${id}: ${error.message}`, { cause: error }));
    };
    w.on("message", onMessage);
    w.on("error", onError);
    w.postMessage({ id, ...task }, [task.bytes.buffer as ArrayBuffer, task.ends.buffer as ArrayBuffer]);
  });
}

type Executor = Pick<LedgerDb, "execute">;

/**
 * The snapshot root and account count straight from the balances table: PostgreSQL sorts the
 * balances by account bytes (collate "C"), encodes every leaf exactly as writeBalanceLeaf does and
 * returns one bytea per chunk of `chunkLeaves`, so no per-account JS object is ever made; the
 * chunks are hashed on the worker pool (inline when there is only one).
 */
export async function snapshotRootFromDb(tx: Executor, asOfSize: number, workersMax: number = SnapshotHashLimits.workersMax): Promise<{ root: string; accounts: number }> {
  const result = await tx.execute(sql`
    select count(*)::int as n, string_agg(leaf, ''::bytea order by account collate "C") as leaves
    from (select account,
                 'PLB1'::bytea || substring(int4send(octet_length(account)) from 3 for 2) || convert_to(account, 'UTF8') || int8send(balance) || int8send(${asOfSize}::bigint) as leaf,
                 (row_number() over (order by account collate "C") - 1) / ${SnapshotHashLimits.chunkLeaves} as chunk
          from balances) t
    group by chunk order by chunk`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { n: number; leaves: Uint8Array }[];
  const tasks = rows.map((r, i) => ({ bytes: new Uint8Array(r.leaves), ends: leafEnds(r.leaves, Number(r.n), i) }));
  const accounts = tasks.reduce((sum, t) => sum + t.ends.length, 0);
  if (tasks.length <= 1) {
    const only = tasks[0];
    const leaves = only === undefined ? [] : Array.from(only.ends, (end, i) => leafHash(only.bytes.subarray(i === 0 ? 0 : (only.ends[i - 1] as number), end)));
    return { root: Buffer.from(merkleRoot(leaves)).toString("hex"), accounts };
  }
  const workers = Array.from({ length: Math.max(1, Math.min(workersMax, availableParallelism(), tasks.length)) }, () => new Worker(WORKER_SOURCE, { eval: true }));
  const roots: Buffer[] = new Array<Buffer>(tasks.length);
  let next = 0;
  try {
    await Promise.all(
      workers.map(async (w) => {
        for (let id = next++; id < tasks.length; id = next++) roots[id] = await runTask(w, id, tasks[id] as { bytes: Uint8Array; ends: Uint32Array });
      }),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return { root: Buffer.from(merkleRoot(roots)).toString("hex"), accounts };
}

/** End offsets of the leaves packed in one chunk (each: "PLB1", u16 name length, name, 16 bytes); refuses a chunk that does not parse. */
function leafEnds(bytes: Uint8Array, count: number, chunk: number): Uint32Array {
  const ends = new Uint32Array(count);
  let o = 0;
  for (let i = 0; i < count; i += 1) {
    if (o + 6 > bytes.length) break;
    o += 4 + 2 + ((bytes[o + 4] as number) << 8 | (bytes[o + 5] as number)) + 16;
    ends[i] = o;
  }
  if (o !== bytes.length || (count > 0 && ends[count - 1] !== o)) throw new Error(`snapshot: balance chunk ${chunk} does not hold ${count} well-formed leaves`);
  return ends;
}
