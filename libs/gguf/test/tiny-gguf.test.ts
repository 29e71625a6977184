import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  ensureTinyModel,
  seededRandom,
  tinyGguf,
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
