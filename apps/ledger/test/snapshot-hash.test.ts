import { describe, expect, it } from "vitest";
import { parallelSnapshotRoot, SnapshotHashLimits } from "../src/ledger/snapshot-hash.js";
import { snapshotRoot, snapshotRootParallel } from "../src/ledger/snapshot.js";
import { balanceLeafHash, encodeBalanceLeaf } from "../src/proof/entry.js";
import { leafHash } from "../src/proof/merkle.js";

const rows = (n: number, name: (i: number) => string = (i) => `m${String(i).padStart(8, "0")}`) =>
  Array.from({ length: n }, (_, i) => ({ account: name(i), balance: (i % 3 === 0 ? -1 : 1) * i * 4_294_967 }));

describe("parallel snapshot hashing", () => {
  it("encodes balance leaves the same in a shared buffer as one by one", () => {
    for (const [account, balance] of [["a", 0], ["ünïcødé", -(2 ** 40) - 7], ["m00000001", 2 ** 53 - 1]] as const) {
      expect(balanceLeafHash(account, balance, 2 ** 33 + 5)).toEqual(leafHash(encodeBalanceLeaf(account, balance, 2 ** 33 + 5)));
    }
  });

  it("gives the same root as the single-threaded tree, on chunk boundaries and off them", async () => {
    const c = SnapshotHashLimits.chunkLeaves;
    for (const n of [1, c - 1, c, c + 1, 3 * c + 17]) {
      const set = rows(n);
      expect((await parallelSnapshotRoot(set, 42, 2)).toString("hex"), `n=${n}`).toBe(snapshotRoot(set, 42));
    }
  }, 120_000);

  it("sorts unsorted and non-ASCII account names by bytes before hashing", async () => {
    const n = SnapshotHashLimits.inlineLeavesMax + 3;
    const set = rows(n, (i) => `${i % 5 === 0 ? "é" : "z"}${(n - i).toString(36)}`);
    const root = await snapshotRootParallel(set, 7);
    expect(root).toBe(snapshotRoot(set, 7));
    expect(root).not.toBe(snapshotRoot(set, 8));
  }, 120_000);
});
