import { mkdirSync, mkdtempSync, rmSync, statSync, chmodSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveModelSources } from "../src/inference/model-sources.js";
import { IDENTITY_FILE, loadOrCreateIdentity } from "../src/peer/identity.js";
import { readyTinyEngine, tinyModelPath } from "./fixtures.js";
import { HOLD_MARKER, holdingEngine, newIdentity, startSidecar } from "./harness.js";

const scratch = mkdtempSync(join(tmpdir(), "potluck-limits-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("request queue over HTTP", () => {
  it("answers 503 queue_full, saying so, while the model's only slot is busy", async () => {
    const { engine } = await readyTinyEngine({ queueWaitingMax: 0 });
    const held = holdingEngine(engine);
    const sidecar = await startSidecar({ machine: "mac", engine: held, identity: newIdentity("mac") });
    const model = engine.list()[0]!.id;
    try {
      const first = await fetch(`${sidecar.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model,
          stream: true,
          max_tokens: 32,
          messages: [{ role: "user", content: HOLD_MARKER }],
        }),
      });
      expect(first.status).toBe(200);
      const reader = first.body!.getReader();
      await reader.read(); // the first token is out; the generation now holds the slot
      const second = await fetch(`${sidecar.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, max_tokens: 4, messages: [{ role: "user", content: "me too" }] }),
      });
      expect(second.status).toBe(503);
      const { error } = (await second.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("queue_full");
      expect(error.message).toMatch(/request queue is full/);
      held.release();
      while (!(await reader.read()).done);
    } finally {
      held.release();
      await sidecar.close();
      await engine.close();
    }
  });
});

describe("model sources", () => {
  const resolveIn = (configured: string, dataDir: string) =>
    resolveModelSources({ configured, discover: false, env: {}, home: scratch, dataDir, tinySeed: 1 });

  it("uses the generated tiny TEST model when nothing is configured", async () => {
    const sources = await resolveIn("", join(scratch, "data"));
    expect(sources).toEqual([
      {
        id: "potluck-tiny-test-model-s1-v2",
        path: join(scratch, "data", "models", "potluck-tiny-test-model-s1-v2.gguf"),
        testModel: true,
        source: "test",
        kind: "chat",
      },
    ]);
    expect(statSync(sources[0]!.path).size).toBeGreaterThan(100_000);
  });

  it("takes files and directories, names the variable for a missing path, and lists a file once", async () => {
    const dir = join(scratch, "models");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "a.gguf"), "x");
    writeFileSync(join(dir, "notes.txt"), "x");
    expect((await resolveIn(`${dir},${tinyModelPath()}`, scratch)).map((s) => s.id)).toEqual([
      "a",
      "potluck-tiny-test-model-s1-v2",
    ]);
    await expect(resolveIn(join(scratch, "nope.gguf"), scratch)).rejects.toThrow(
      /POTLUCK_MODELS: .*nope.gguf does not exist/,
    );
    expect(
      (await resolveIn(`${join(dir, "a.gguf")},${dir}`, scratch)).filter((s) => s.id.startsWith("a")),
    ).toHaveLength(1);
  });
});

describe("identity key", () => {
  it("is created 0600 once, reloaded after, and tightened if others could read it", () => {
    const dataDir = join(scratch, "identity");
    const first = loadOrCreateIdentity(dataDir, "mac");
    const path = join(dataDir, IDENTITY_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(loadOrCreateIdentity(dataDir, "mac").publicKey).toBe(first.publicKey);
    chmodSync(path, 0o644);
    const logs: string[] = [];
    expect(loadOrCreateIdentity(dataDir, "mac", (m) => logs.push(m)).publicKey).toBe(first.publicKey);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(logs.join()).toMatch(/readable by others/);
    expect(
      Object.keys(first.sign({ method: "GET", path: "/peer/capabilities", body: "", target: "linux" })).sort(),
    ).toEqual(["x-potluck-machine", "x-potluck-nonce", "x-potluck-signature", "x-potluck-timestamp"]);
  });
});
