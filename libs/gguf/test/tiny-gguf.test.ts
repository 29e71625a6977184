import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureTinyModel, seededRandom, tinyGguf, tinyModelDigest, tinyModelFileName, TINY_MODEL_MARKER_KEY, TINY_MODEL_NAME } from "../src/index.js";

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
