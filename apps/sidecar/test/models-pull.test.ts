import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyGguf, TinyModelShape } from "@potluck/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PulledManifest } from "../src/models/manifest.js";
import { pullModel, PullError, type PullProgress } from "../src/models/pull.js";
import { startModelServer } from "./model-server.js";

// Real downloads with node-llama-cpp's downloader from a loopback server the test starts.
const small = tinyGguf(3);
// Bigger than the downloader's 5 MiB chunk, so a cut after 6 MiB leaves a whole chunk to resume from.
const big = tinyGguf(4, { ...TinyModelShape, embeddingLength: 512, feedForwardLength: 1024, blockCount: 1 });
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
let server: Awaited<ReturnType<typeof startModelServer>>;
let root: string;
let n = 0;
const freshDir = () => join(root, `pulled-${++n}`);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "potluck-pull-"));
  server = await startModelServer(
    new Map([
      ["/files/small-model.gguf", { body: small }],
      ["/files/big-model.gguf", { body: big }],
      ["/files/lying-model.gguf", { body: small, sha256: "0".repeat(64) }],
      // What the Hugging Face endpoint serves for hf:org/tiny-GGUF/tiny-q8.gguf, with its LFS SHA-256.
      ["/org/tiny-GGUF/resolve/main/tiny-q8.gguf", { body: small, sha256: sha(small) }],
    ]),
  );
});
afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("pullModel", () => {
  it("downloads a GGUF over HTTP into the pulled folder, records it, and reports bytes, rate and ETA", async () => {
    const dir = freshDir();
    const progress: PullProgress[] = [];
    const pulled = await pullModel(`${server.url}/files/small-model.gguf`, {
      dir,
      onProgress: (p) => progress.push(p),
    });
    expect(pulled).toMatchObject({
      id: "small-model",
      files: ["small-model.gguf"],
      sizeBytes: small.length,
      already: false,
    });
    expect(readFileSync(pulled.path).equals(small)).toBe(true);
    expect(new PulledManifest(dir).list().map((m) => m.id)).toEqual(["small-model"]);
    const last = progress.filter((p) => p.status === "downloading").at(-1);
    expect(last).toMatchObject({ totalBytes: small.length, completedBytes: small.length });
    expect(typeof last?.bytesPerS).toBe("number");
    // Nothing left in staging once it is done.
    expect(readdirSync(join(dir, ".partial"))).toEqual([]);
    // The same reference again is already there: nothing is downloaded.
    const gets = server.requests.length;
    expect((await pullModel(`${server.url}/files/small-model.gguf`, { dir })).already).toBe(true);
    expect(server.requests.length).toBe(gets);
    // …unless the checksum asked for is not the one it has.
    await expect(
      pullModel(`${server.url}/files/small-model.gguf`, { dir, sha256: "cd".repeat(32) }),
    ).rejects.toMatchObject({ code: "checksum_mismatch", field: "sha256" });
  });

  it("verifies --sha256, and a wrong one is refused with nothing left behind", async () => {
    const dir = freshDir();
    const ok = await pullModel(`${server.url}/files/small-model.gguf`, { dir, sha256: sha(small).toUpperCase() });
    expect(ok.sha256).toBe(sha(small));
    const bad = freshDir();
    const error = await pullModel(`${server.url}/files/small-model.gguf`, { dir: bad, sha256: "ab".repeat(32) }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PullError);
    expect(error).toMatchObject({ status: 400, code: "checksum_mismatch", field: "sha256" });
    expect((error as Error).message).toContain(sha(small));
    expect(existsSync(join(bad, "small-model.gguf"))).toBe(false);
    expect(readdirSync(join(bad, ".partial"))).toEqual([]);
    expect(new PulledManifest(bad).list()).toEqual([]);
  });

  it("refuses a file whose checksum differs from the one the server states", async () => {
    const dir = freshDir();
    const error = await pullModel(`${server.url}/files/lying-model.gguf`, { dir }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "checksum_mismatch", field: "ref" });
    expect(readdirSync(dir).filter((f) => f.endsWith(".gguf"))).toEqual([]);
    expect(readdirSync(join(dir, ".partial"))).toEqual([]);
  });

  it("maps hf:org/repo/file to the Hugging Face endpoint and verifies the SHA-256 it states", async () => {
    const dir = freshDir();
    const pulled = await pullModel("hf:org/tiny-GGUF/tiny-q8.gguf", { dir, hfEndpoint: `${server.url}/` });
    expect(pulled).toMatchObject({ id: "tiny-q8", sha256: sha(small), ref: "hf:org/tiny-GGUF/tiny-q8.gguf" });
    expect(readFileSync(pulled.path).equals(small)).toBe(true);
    expect(
      server.requests.some((r) => r.path === "/org/tiny-GGUF/resolve/main/tiny-q8.gguf" && r.method === "GET"),
    ).toBe(true);
  });

  it("resumes a download the server cut mid-file from the bytes it already has", async () => {
    const dir = freshDir();
    const before = server.requests.length;
    server.cutNextAfter(6 * 1024 * 1024);
    const pulled = await pullModel(`${server.url}/files/big-model.gguf`, { dir });
    expect(readFileSync(pulled.path).equals(big)).toBe(true);
    const ranged = server.requests.slice(before).filter((r) => r.method === "GET" && r.range !== undefined);
    const startOf = (r: { range?: string | undefined }) => Number(/^bytes=(\d+)-/.exec(r.range ?? "")?.[1]);
    const cutAt = ranged.findIndex((r) => r.cut === true);
    expect(cutAt).toBeGreaterThanOrEqual(0);
    const cutStart = startOf(ranged[cutAt]!);
    // The range that was cut is asked for again from past its start: the bytes it had got are kept.
    const retried = ranged.slice(cutAt + 1).map(startOf);
    expect(retried.some((s) => s > cutStart && s <= cutStart + 6 * 1024 * 1024)).toBe(true);
    expect(retried).not.toContain(cutStart);
  });

  it("resumes, in a later pull, a download that stopped when the server went away", async () => {
    const dir = freshDir();
    server.cutNextAfter(6 * 1024 * 1024, true);
    const stopped = await pullModel(`${server.url}/files/big-model.gguf`, { dir, stallMs: 1_500 }).catch(
      (e: unknown) => e,
    );
    server.up();
    expect(stopped).toMatchObject({ code: "download_failed" });
    expect((stopped as Error).message).toContain("run the pull again to resume");
    expect(readdirSync(join(dir, ".partial"))).toHaveLength(1);
    expect(existsSync(join(dir, "big-model.gguf"))).toBe(false);
    const before = server.requests.length;
    const pulled = await pullModel(`${server.url}/files/big-model.gguf`, { dir });
    expect(readFileSync(pulled.path).equals(big)).toBe(true);
    const ranges = server.requests
      .slice(before)
      .filter((r) => r.method === "GET" && r.range !== undefined)
      .map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.range!)!.slice(1).map(Number) as [number, number]);
    // The cut stream had finished a whole 5 MiB chunk before the cut: the resumed pull never asks for it again.
    expect(ranges.length).toBeGreaterThan(0);
    const mib = 1024 * 1024;
    expect(ranges.filter(([start, end]) => start < 10 * mib && end >= 5 * mib)).toEqual([]);
  });

  it("refuses bad references naming the field", async () => {
    const dir = freshDir();
    for (const ref of ["ftp://x/y.gguf", "hf:org/repo", "hf:org/repo:Q4_K_M", `${server.url}/files/notes.txt`, ""])
      await expect(pullModel(ref, { dir })).rejects.toMatchObject({ status: 400, code: "invalid_ref", field: "ref" });
    await expect(pullModel(`${server.url}/files/small-model.gguf`, { dir, sha256: "xyz" })).rejects.toMatchObject({
      field: "sha256",
    });
  });
});
