import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import {
  balanceLeafHash,
  decodeEntry,
  encodeBalanceLeaf,
  encodeEntry,
  entryHash,
  entryLeafHash,
  KindCode,
  type LedgerRecord,
  type RecordKind,
} from "../src/entry.js";
import { leafHash } from "../src/merkle.js";

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"));
const record: fc.Arbitrary<LedgerRecord> = fc.record({
  seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  eventId: fc.string({ maxLength: 128 }),
  kind: fc.constantFrom(...(Object.keys(KindCode) as RecordKind[])),
  account: fc.string({ maxLength: 63 }),
  delta: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  heldDelta: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  ref: fc.string({ maxLength: 128 }),
  meta: fc.string({ maxLength: 300 }),
  payloadHash: hex32,
  createdAtMs: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  prevHash: hex32,
});

describe("canonical entry encoding", () => {
  it("round-trips every field and changes with any one of them", () => {
    fc.assert(
      fc.property(record, record, (a, b) => {
        expect(decodeEntry(encodeEntry(a))).toEqual(a);
        const same = JSON.stringify(a) === JSON.stringify(b);
        expect(encodeEntry(a).equals(encodeEntry(b))).toBe(same);
      }),
      { numRuns: 300 },
    );
  });

  it("hashes exactly the encoded bytes, whatever the string sizes (the hashes share one growing buffer)", () => {
    const long = record.chain((r) =>
      fc.string({ unit: "binary", minLength: 0, maxLength: 3_000 }).map((meta) => ({ ...r, meta })),
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(record, long), { minLength: 1, maxLength: 4 }), (rs) => {
        for (const r of rs) {
          const bytes = encodeEntry(r);
          expect(entryHash(r)).toBe(createHash("sha256").update(bytes).digest("hex"));
          expect(entryLeafHash(r).equals(leafHash(bytes))).toBe(true);
          expect(decodeEntry(bytes)).toEqual(r);
        }
      }),
      { numRuns: 300 },
    );
    const base = {
      seq: 1,
      eventId: "e",
      kind: "earn" as const,
      account: "a",
      delta: 1,
      heldDelta: 0,
      ref: "",
      meta: "{}",
      payloadHash: "0".repeat(64),
      createdAtMs: 1,
      prevHash: "0".repeat(64),
    };
    expect(() => entryHash({ ...base, ref: "é".repeat(0x8000) })).toThrow(/does not fit a 2-byte length/);
    expect(entryHash({ ...base, meta: "é".repeat(0x8000) })).toBe(
      createHash("sha256")
        .update(encodeEntry({ ...base, meta: "é".repeat(0x8000) }))
        .digest("hex"),
    );
    expect(() => entryHash({ ...base, prevHash: "A".repeat(64) })).toThrow(/lower-case hex/);
  });

  it("refuses truncated or padded bytes", () => {
    const bytes = encodeEntry({
      seq: 1,
      eventId: "e",
      kind: "earn",
      account: "a",
      delta: 1,
      heldDelta: 0,
      ref: "",
      meta: "{}",
      payloadHash: "0".repeat(64),
      createdAtMs: 1,
      prevHash: "0".repeat(64),
    });
    expect(() => decodeEntry(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated/);
    expect(() => decodeEntry(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/trailing/);
  });

  it("hashes a balance leaf the same way in the one-buffer fast path", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 63 }),
        fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        (account, balance, size) => {
          expect(
            balanceLeafHash(account, balance, size).equals(leafHash(encodeBalanceLeaf(account, balance, size))),
          ).toBe(true);
          const bytes = encodeBalanceLeaf(account, balance, size);
          expect(bytes.readBigInt64BE(bytes.length - 16)).toBe(BigInt(balance));
          expect(bytes.readBigUInt64BE(bytes.length - 8)).toBe(BigInt(size));
        },
      ),
      { numRuns: 500 },
    );
  });
});
