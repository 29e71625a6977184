import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { sql } from "drizzle-orm";
import type { LedgerDb } from "../db/open.js";
import { balanceLeafBytes, writeBalanceLeaf, leafHash, merkleRoot } from "@potluck/ledger-proof";
import type { BalanceRow } from "./balance-row.js";

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
function pack(
  rows: readonly BalanceRow[],
  start: number,
  end: number,
  asOfSize: number,
): { bytes: Uint8Array; ends: Uint32Array } {
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
export async function parallelSnapshotRoot(
  rows: readonly BalanceRow[],
  asOfSize: number,
  workersMax: number = SnapshotHashLimits.workersMax,
): Promise<Buffer> {
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
 * The snapshot root and account count straight from the balances table, streamed: PostgreSQL
 * reads the balances in account byte order (the "C" primary key, no sort), encodes every leaf
 * exactly as writeBalanceLeaf does and returns one chunk of `chunkLeaves` leaves per query
 * (keyset pages: each starts after the previous chunk's last account). Each chunk goes to the
 * worker pool as soon as it arrives, so hashing chunk k overlaps reading chunk k+1 instead of
 * waiting for the whole set, and no per-account JS object is ever made. The caller holds the
 * head lock, which every balance write also takes, so the pages see one unchanging set.
 */
export async function snapshotRootFromDb(
  tx: Executor,
  asOfSize: number,
  workersMax: number = SnapshotHashLimits.workersMax,
): Promise<{ root: string; accounts: number }> {
  const first = await readChunk(tx, asOfSize, undefined, 0);
  if (first.ends.length < SnapshotHashLimits.chunkLeaves) {
    // One partial chunk is the whole set: worker start-up would cost more than it saves.
    const leaves = Array.from(first.ends, (end, i) =>
      leafHash(first.bytes.subarray(i === 0 ? 0 : (first.ends[i - 1] as number), end)),
    );
    return { root: Buffer.from(merkleRoot(leaves)).toString("hex"), accounts: leaves.length };
  }
  const workers = Array.from(
    { length: Math.max(1, Math.min(workersMax, availableParallelism())) },
    () => new Worker(WORKER_SOURCE, { eval: true }),
  );
  const roots: Promise<Buffer>[] = [];
  // Chunks in hand at once (queued in a worker or being hashed): bounds memory when reading outruns hashing.
  const inFlightMax = 2 * workers.length;
  let accounts = 0;
  try {
    let chunk: LeafChunk | undefined = first;
    while (chunk !== undefined) {
      const id = roots.length;
      // Read before dispatch: the buffers are transferred to the worker, which detaches them here.
      const length: number = chunk.ends.length;
      const last: string = chunk.last;
      const pending = runTask(workers[id % workers.length] as Worker, id, { bytes: chunk.bytes, ends: chunk.ends });
      pending.catch(() => undefined); // awaited below; a failure must not surface as unhandled meanwhile
      roots.push(pending);
      accounts += length;
      if (id >= inFlightMax) await roots[id - inFlightMax];
      chunk = length < SnapshotHashLimits.chunkLeaves ? undefined : await readChunk(tx, asOfSize, last, id + 1);
      if (chunk !== undefined && chunk.ends.length === 0) chunk = undefined;
    }
    return { root: Buffer.from(merkleRoot(await Promise.all(roots))).toString("hex"), accounts };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

interface LeafChunk {
  bytes: Uint8Array;
  ends: Uint32Array;
  /** The chunk's last account: the next page starts after it. */
  last: string;
}

/** One page of up to chunkLeaves encoded leaves after `after` (from the start when undefined). */
async function readChunk(tx: Executor, asOfSize: number, after: string | undefined, chunk: number): Promise<LeafChunk> {
  const from = after === undefined ? sql`true` : sql`account collate "C" > ${after}`;
  const result = await tx.execute(sql`
    select count(*)::int as n, max(account collate "C") as last, string_agg(leaf, ''::bytea order by account collate "C") as leaves
    from (select account,
                 'PLB1'::bytea || substring(int4send(octet_length(account)) from 3 for 2) || convert_to(account, 'UTF8') || int8send(balance) || int8send(${asOfSize}::bigint) as leaf
          from balances where ${from} order by account collate "C" limit ${SnapshotHashLimits.chunkLeaves}) t`);
  const [row] = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as {
    n: number;
    last: string | null;
    leaves: Uint8Array | null;
  }[];
  const n = Number(row?.n ?? 0);
  if (row === undefined || n === 0 || row.leaves === null || row.last === null)
    return { bytes: new Uint8Array(0), ends: new Uint32Array(0), last: after ?? "" };
  const bytes = new Uint8Array(row.leaves);
  return { bytes, ends: leafEnds(bytes, n, chunk), last: row.last };
}

/**
 * End offsets of the leaves packed in one chunk (each: "PLB1", u16 name length, name, 16 bytes); refuses a chunk that
 * does not parse.
 */
function leafEnds(bytes: Uint8Array, count: number, chunk: number): Uint32Array {
  const ends = new Uint32Array(count);
  let o = 0;
  for (let i = 0; i < count; i += 1) {
    if (o + 6 > bytes.length) break;
    o += 4 + 2 + (((bytes[o + 4] as number) << 8) | (bytes[o + 5] as number)) + 16;
    ends[i] = o;
  }
  if (o !== bytes.length || (count > 0 && ends[count - 1] !== o))
    throw new Error(`snapshot: balance chunk ${chunk} does not hold ${count} well-formed leaves`);
  return ends;
}
