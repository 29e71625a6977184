import { emptyRoot, nodeHash } from "./merkle.js";

/**
 * Building roots and proofs over a list of leaf hashes (RFC 9162 §2.1). The tree is never padded:
 * an odd node at the end of a level moves up unchanged, which gives the same shape as the RFC's
 * "largest power of two below n" split.
 */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  return subtreeRoot(leaves, 0, leaves.length);
}

/** Root of leaves[start, end), computed bottom-up level by level. */
export function subtreeRoot(leaves: readonly Uint8Array[], start: number, end: number): Uint8Array {
  if (end <= start) return emptyRoot();
  let level: Uint8Array[] = leaves.slice(start, end);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2)
      next.push(nodeHash(level[i] as Uint8Array, level[i + 1] as Uint8Array));
    if (level.length % 2 === 1) next.push(level[level.length - 1] as Uint8Array);
    level = next;
  }
  return level[0] as Uint8Array;
}

/** RFC 9162 §2.1.3.1 PATH(m, D[0:size]): the audit path for leaf `index` in the first `size` leaves. */
export function inclusionProof(
  leaves: readonly Uint8Array[],
  index: number,
  size: number = leaves.length,
): Uint8Array[] {
  if (!(index >= 0 && index < size && size <= leaves.length))
    throw new RangeError(`no leaf ${index} in a tree of ${size}`);
  return path(leaves, index, 0, size);
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[0:n]): shows the first `size1` leaves are a prefix of the first `size2`. */
export function consistencyProof(
  leaves: readonly Uint8Array[],
  size1: number,
  size2: number = leaves.length,
): Uint8Array[] {
  if (!(size1 > 0 && size1 <= size2 && size2 <= leaves.length))
    throw new RangeError(`no consistency proof from ${size1} to ${size2}`);
  if (size1 === size2) return [];
  return subproof(leaves, size1, 0, size2, true);
}

function path(leaves: readonly Uint8Array[], m: number, start: number, end: number): Uint8Array[] {
  const n = end - start;
  if (n <= 1) return [];
  const k = largestPowerOfTwoBelow(n);
  if (m < k) return [...path(leaves, m, start, start + k), subtreeRoot(leaves, start + k, end)];
  return [...path(leaves, m - k, start + k, end), subtreeRoot(leaves, start, start + k)];
}

function subproof(leaves: readonly Uint8Array[], m: number, start: number, end: number, whole: boolean): Uint8Array[] {
  const n = end - start;
  if (m === n) return whole ? [] : [subtreeRoot(leaves, start, end)];
  const k = largestPowerOfTwoBelow(n);
  if (m <= k) return [...subproof(leaves, m, start, start + k, whole), subtreeRoot(leaves, start + k, end)];
  return [...subproof(leaves, m - k, start + k, end, false), subtreeRoot(leaves, start, start + k)];
}

/** The largest power of two strictly below n (n ≥ 2). */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The log's right edge: the roots of its perfect subtrees, largest first. Appending a leaf merges
 * equal-sized neighbours; the root folds them right to left. Lets a replay check every checkpoint
 * in O(log n) each, holding O(log n) hashes instead of every leaf.
 */
export class CompactRange {
  private readonly nodes: { size: number; hash: Uint8Array }[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  append(leaf: Uint8Array): void {
    let node = { size: 1, hash: leaf };
    for (let last = this.nodes.at(-1); last !== undefined && last.size === node.size; last = this.nodes.at(-1)) {
      this.nodes.pop();
      node = { size: last.size * 2, hash: nodeHash(last.hash, node.hash) };
    }
    this.nodes.push(node);
    this.count += 1;
  }

  root(): Uint8Array {
    const last = this.nodes.at(-1);
    if (last === undefined) return emptyRoot();
    let acc = last.hash;
    for (let i = this.nodes.length - 2; i >= 0; i -= 1)
      acc = nodeHash((this.nodes[i] as { hash: Uint8Array }).hash, acc);
    return acc;
  }
}
