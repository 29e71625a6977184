import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { getLlama, LlamaChatSession } from "node-llama-cpp";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../src/lib/repo.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "potluck-model-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function potluck(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(repoRoot, "bin/potluck.mjs"), ...args], {
      cwd: repoRoot,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("potluck model tiny", () => {
  it("writes the same bytes for the same seed and different bytes for another", async () => {
    const a = join(dir, "a.gguf");
    const b = join(dir, "b.gguf");
    const c = join(dir, "c.gguf");
    const first = await potluck(["model", "tiny", "--out", a, "--seed", "9"]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/TEST MODEL/);
    expect((await potluck(["model", "tiny", "--out", b, "--seed", "9"])).code).toBe(0);
    expect((await potluck(["model", "tiny", "--out", c, "--seed", "10"])).code).toBe(0);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    expect(readFileSync(a).equals(readFileSync(c))).toBe(false);
  });

  it("refuses a bad seed and a missing --out with a one-line reason", async () => {
    const bad = await potluck(["model", "tiny", "--out", join(dir, "x.gguf"), "--seed", "-3"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--seed/);
    const noOut = await potluck(["model", "tiny"]);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/--out/);
  });

  it("writes a file node-llama-cpp loads, generates from and embeds with", async () => {
    const path = join(dir, "real.gguf");
    expect((await potluck(["model", "tiny", "--out", path, "--seed", "2"])).code).toBe(0);
    const llama = await getLlama({ build: "never", gpu: false, maxThreads: 1 });
    const model = await llama.loadModel({ modelPath: path });
    try {
      const context = await model.createContext({ contextSize: 512, threads: 1 });
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      let chunks = 0;
      const text = await session.prompt("Say something", {
        maxTokens: 16,
        temperature: 0,
        onTextChunk: () => chunks++,
      });
      expect(session.chatWrapper.wrapperName).toBe("ChatML");
      expect(chunks).toBeGreaterThan(1);
      expect(text.length).toBeGreaterThan(0);
      const embedding = await (
        await model.createEmbeddingContext({ contextSize: 128, threads: 1 })
      ).getEmbeddingFor("hello");
      expect(embedding.vector.length).toBe(64);
    } finally {
      await model.dispose();
      await llama.dispose();
    }
  });
});
