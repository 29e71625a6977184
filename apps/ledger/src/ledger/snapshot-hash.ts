import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { balanceLeafBytes, writeBalanceLeaf } from "../proof/entry.js";
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
