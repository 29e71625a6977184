import { createHash, hash } from "node:crypto";

/** RFC 9162 §2.1.1 hashing: leaves and interior nodes are domain-separated so one can never pose as the other. */
export const HASH_BYTES = 32;

export function leafHash(entry: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(1 + entry.length);
  input[0] = 0x00;
  input.set(entry, 1);
  return hash("sha256", input, "buffer");
}

/** One-shot hashing of one 65-byte buffer: a tree of a million leaves makes two million of these. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_BYTES || right.length !== HASH_BYTES)
    return createHash("sha256").update(NODE_PREFIX).update(left).update(right).digest();
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 1 + HASH_BYTES);
  return hash("sha256", NODE_INPUT, "buffer");
}

/** The hash of the empty tree: SHA-256 of nothing. */
export function emptyRoot(): Buffer {
  return createHash("sha256").digest();
}

/** A proof did not verify; `reason` says which check failed. */
export class ProofError extends Error {
  override name = "ProofError";
}

/**
 * RFC 9162 §2.1.3.2: checks that `leaf` is at `index` in the tree of `size` leaves whose root is
 * `root`. Throws ProofError naming the failed check; returns nothing on success.
 */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  assertSize(index, "leaf index");
  assertSize(size, "tree size");
  if (index >= size) throw new ProofError(`leaf index ${index} is not below tree size ${size}`);
  if (leaf.length !== HASH_BYTES) throw new ProofError(`leaf hash has ${leaf.length} bytes, expected ${HASH_BYTES}`);
  const computed = rootFromInclusion(index, size, leaf, proof);
  if (!equalBytes(computed, root)) throw new ProofError("inclusion proof does not lead to the expected root");
}

/** Recomputes the root an inclusion proof commits to (RFC 9162 §2.1.3.2 steps 2-4). */
export function rootFromInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    assertHash(p);
    if (sn === 0) throw new ProofError("inclusion proof is longer than the tree is deep");
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofError("inclusion proof is shorter than the tree is deep");
  return r;
}

/**
 * RFC 9162 §2.1.4.2: checks that the tree of `size2` leaves with root `root2` extends the tree of
 * `size1` leaves with root `root1`. Throws ProofError naming the failed check.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  assertSize(size1, "first size");
  assertSize(size2, "second size");
  if (size2 < size1) throw new ProofError(`second size ${size2} is below first size ${size1}`);
  // Every tree extends the empty tree, but a "proof" of it commits to nothing, so it is refused.
  if (size1 === 0) throw new ProofError("a consistency proof from the empty tree proves nothing");
  if (size1 === size2) {
    if (proof.length > 0) throw new ProofError("equal sizes need an empty consistency proof");
    if (!equalBytes(root1, root2)) throw new ProofError("equal sizes but the roots differ");
    return;
  }
  if (proof.length === 0) throw new ProofError("consistency proof is empty");
  for (const p of proof) assertHash(p);
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = path[0] as Uint8Array;
  let sr: Uint8Array = fr;
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofError("consistency proof is longer than needed");
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofError("consistency proof is shorter than needed");
  if (!equalBytes(fr, root1)) throw new ProofError("consistency proof does not lead to the first root");
  if (!equalBytes(sr, root2)) throw new ProofError("consistency proof does not lead to the second root");
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length === b.length &&
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0
  );
}

export function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  let m = n;
  while (m % 2 === 0) m /= 2;
  return m === 1;
}

const NODE_PREFIX = Buffer.from([0x01]);
// Reused input for nodeHash: JS is single-threaded and hash() copies nothing out of it.
const NODE_INPUT = Buffer.concat([NODE_PREFIX, Buffer.alloc(2 * HASH_BYTES)]);

// Sizes exceed 2^31, so bit operators (32-bit in JS) are avoided: halving by division stays exact below 2^53.
function half(n: number): number {
  return Math.floor(n / 2);
}

function assertSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new ProofError(`${what} ${n} is not a non-negative integer`);
}

function assertHash(h: Uint8Array): void {
  if (h.length !== HASH_BYTES) throw new ProofError(`proof hash has ${h.length} bytes, expected ${HASH_BYTES}`);
}
