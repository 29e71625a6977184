import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  ensureTinyModel,
  seededRandom,
  tinyGguf,
  tinySplitGguf,
  tinyModelDigest,
  tinyModelFileName,
  TinyModelShape,
  TINY_MODEL_MARKER_KEY,
  TINY_MODEL_NAME,
} from "../src/index.js";

// node-llama-cpp loading these bytes is the sidecar's test (apps/sidecar/test/engine.test.ts);
// here: the file's frame, determinism, and the cache's write-once behaviour, with no runtime.
const dir = mkdtempSync(join(tmpdir(), "potluck-gguf-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("tinyGguf", () => {
  it("writes a GGUF v3 header and marks itself as a test model", () => {
    const bytes = tinyGguf(1);
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("GGUF");
    expect(bytes.readUInt32LE(4)).toBe(3);
    expect(bytes.includes(Buffer.from(TINY_MODEL_MARKER_KEY))).toBe(true);
  });

  it("is identical for one seed and differs between seeds", () => {
    expect(tinyModelDigest(7)).toBe(tinyModelDigest(7));
    expect(tinyModelDigest(7)).not.toBe(tinyModelDigest(8));
    const [a, b] = [seededRandom(3), seededRandom(3)];
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });
});

describe("ensureTinyModel", () => {
  it("writes the file once under its versioned name and reuses it", () => {
    const path = ensureTinyModel(dir, 2);
    expect(path).toBe(join(dir, tinyModelFileName(2)));
    expect(tinyModelFileName(2).startsWith(TINY_MODEL_NAME)).toBe(true);
    expect(readFileSync(path).equals(tinyGguf(2))).toBe(true);
    const written = statSync(path).mtimeMs;
    expect(ensureTinyModel(dir, 2)).toBe(path);
    expect(statSync(path).mtimeMs).toBe(written);
  });
});

describe("tinyGguf metadata overrides", () => {
  it("writes a contradicting value in place, and refuses a key it does not write", () => {
    const normal = tinyGguf(3);
    const headless = tinyGguf(3, TinyModelShape, { "llama.attention.head_count": 0 });
    expect(headless.length).toBe(normal.length);
    expect(headless.equals(normal)).toBe(false);
    expect(() => tinyGguf(3, TinyModelShape, { "llama.no_such_key": 1 })).toThrow(/no metadata key/);
  });
});

describe("tinyGguf variants and split models (the fixtures of model discovery's tests)", () => {
  it("renames the architecture's keys, adds pooling and general.type, and leaves out keys on request", () => {
    const bert = tinyGguf(4, TinyModelShape, {}, { architecture: "bert", poolingType: 1, generalType: "mmproj" });
    for (const key of ["bert.attention.head_count", "bert.pooling_type", "general.type", "mmproj"])
      expect(bert.includes(Buffer.from(key)), key).toBe(true);
    expect(bert.includes(Buffer.from("llama.attention.head_count"))).toBe(false);
    const omitted = tinyGguf(4, TinyModelShape, {}, { omitKeys: ["llama.attention.head_count"] });
    expect(hasKey(omitted, "llama.attention.head_count")).toBe(false);
    expect(hasKey(omitted, "llama.attention.head_count_kv")).toBe(true);
    expect(hasKey(tinyGguf(4), "llama.attention.head_count")).toBe(true);
    expect(() => tinyGguf(4, TinyModelShape, {}, { omitKeys: ["llama.nope"] })).toThrow(/no metadata key llama.nope/);
  });

  it("splits one model's tensors over N GGUF files, all metadata in the first, split keys in each", () => {
    const parts = tinySplitGguf(5, 3);
    expect(parts).toHaveLength(3);
    for (const part of parts) {
      expect(part.subarray(0, 4).toString("latin1")).toBe("GGUF");
      expect(part.includes(Buffer.from("split.count"))).toBe(true);
    }
    expect(parts[0]!.includes(Buffer.from("tokenizer.ggml.tokens"))).toBe(true);
    expect(parts[1]!.includes(Buffer.from("tokenizer.ggml.tokens"))).toBe(false);
    // The parts hold the whole model's weights between them, give or take headers and padding.
    const total = parts.reduce((n, p) => n + p.length, 0);
    expect(Math.abs(total - tinyGguf(5).length)).toBeLessThan(4096);
    expect(() => tinySplitGguf(5, 1)).toThrow(/2-9 parts/);
  });
});

/** A metadata key as GGUF writes it: its u64 length, then its bytes (so a prefix of a longer key does not count). */
function hasKey(bytes: Buffer, key: string): boolean {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(key)));
  return bytes.includes(Buffer.concat([length, Buffer.from(key)]));
}
