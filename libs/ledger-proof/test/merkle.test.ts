import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CompactRange, consistencyProof, inclusionProof, merkleRoot } from "../src/merkle-build.js";
import { leafHash, verifyConsistency, verifyInclusion } from "../src/merkle.js";

// Public vectors from github.com/transparency-dev/merkle (Apache-2.0), converted to one JSON file.
interface InclusionVector {
  file: string;
  leafIdx: number;
  treeSize: number;
  root: string | null;
  leafHash: string | null;
  proof: string[] | null;
  wantErr: boolean;
}
interface ConsistencyVector {
  file: string;
  size1: number;
  size2: number;
  root1: string | null;
  root2: string | null;
  proof: string[] | null;
  wantErr: boolean;
}
const vectors = JSON.parse(
  readFileSync(new URL("./vectors/transparency-dev-merkle.json", import.meta.url), "utf8"),
) as {
  inclusion: InclusionVector[];
  consistency: ConsistencyVector[];
};
const b64 = (s: string | null) => Buffer.from(s ?? "", "base64");

describe("transparency-dev merkle vectors", () => {
  it("has both valid and corrupted cases of each kind", () => {
    for (const list of [vectors.inclusion, vectors.consistency]) {
      expect(list.filter((v) => v.wantErr).length).toBeGreaterThan(50);
      expect(list.filter((v) => !v.wantErr).length).toBeGreaterThan(3);
    }
  });

  it.each(vectors.inclusion.map((v) => [v.file, v] as const))("inclusion %s", (_file, v) => {
    const run = () => verifyInclusion(v.leafIdx, v.treeSize, b64(v.leafHash), (v.proof ?? []).map(b64), b64(v.root));
    if (v.wantErr) expect(run).toThrow();
    else expect(run).not.toThrow();
  });

  it.each(vectors.consistency.map((v) => [v.file, v] as const))("consistency %s", (_file, v) => {
    const run = () => verifyConsistency(v.size1, v.size2, (v.proof ?? []).map(b64), b64(v.root1), b64(v.root2));
    if (v.wantErr) expect(run).toThrow();
    else expect(run).not.toThrow();
  });
});

describe("proof generation", () => {
  const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));

  it("matches the vectors' 8-leaf tree built from the RFC 6962 reference leaves", () => {
    // The upstream trees are built from these 8 reference inputs (rfc6962 test data).
    const inputs = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    const tree = inputs.map((h) => leafHash(Buffer.from(h, "hex")));
    const happy = vectors.inclusion.find((v) => v.file === "inclusion/1/happy-path.json");
    expect(Buffer.from(merkleRoot(tree)).toString("base64")).toBe(happy?.root);
    expect(inclusionProof(tree, 0).map((h) => Buffer.from(h).toString("base64"))).toEqual(happy?.proof);
  });

  it("every generated inclusion and consistency proof verifies, and a flipped bit does not", () => {
    for (let size = 1; size <= leaves.length; size += 3) {
      const root = merkleRoot(leaves.slice(0, size));
      for (let i = 0; i < size; i += 2) {
        const proof = inclusionProof(leaves, i, size);
        verifyInclusion(i, size, leaves[i] as Uint8Array, proof, root);
        if (proof.length > 0) {
          const bad = proof.map((p) => Buffer.from(p));
          const first = bad[0] as Buffer;
          first[0] = (first[0] ?? 0) ^ 1;
          expect(() => verifyInclusion(i, size, leaves[i] as Uint8Array, bad, root)).toThrow();
        }
      }
      for (let first = 1; first <= size; first += 2) {
        const proof = consistencyProof(leaves, first, size);
        verifyConsistency(first, size, proof, merkleRoot(leaves.slice(0, first)), root);
        if (first < size)
          expect(() => verifyConsistency(first, size, proof, merkleRoot(leaves.slice(1, first + 1)), root)).toThrow();
      }
    }
  });
});

describe("compact range", () => {
  it("has the same root as the full tree at every size", () => {
    const range = new CompactRange();
    const leaves = Array.from({ length: 140 }, (_, i) => leafHash(Buffer.from([i])));
    expect(Buffer.from(range.root()).equals(Buffer.from(merkleRoot([])))).toBe(true);
    leaves.forEach((leaf, i) => {
      range.append(leaf);
      expect(Buffer.from(range.root()).toString("hex")).toBe(
        Buffer.from(merkleRoot(leaves.slice(0, i + 1))).toString("hex"),
      );
    });
    expect(range.size).toBe(140);
  });
});
