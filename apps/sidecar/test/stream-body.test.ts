import { connect } from "node:net";
import { serveApp, type ServedApp } from "@potluck/service";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RequestQueue } from "../src/inference/request-queue.js";
import { stalledReaderMsMax, streamResponse } from "../src/routes/stream-body.js";

// Attack 11: a client asks for a long reply and never reads it. The reply is fed by a generator
// that holds a one-slot RequestQueue for as long as it runs, exactly as the engine holds a model
// (LlamaEngine.stream): if the stalled stream is never cut, nobody else is ever served.
const stalledMs = 600;
const chunkText = "x".repeat(64 * 1024);

describe("a reader that stops reading", () => {
  const slot = new RequestQueue("tiny", { concurrency: 1, waitingMax: 4 });
  let cancels = 0;
  let served: ServedApp;

  async function* model(): AsyncGenerator<string> {
    const release = await slot.acquire();
    try {
      for (let i = 0; i < 100_000; i++) yield chunkText;
    } finally {
      release();
    }
  }

  beforeAll(async () => {
    const app = new Hono().get("/generate", (c) =>
      streamResponse(c, model(), {
        headers: { "content-type": "text/plain" },
        encode: (text) => text,
        onCancel: () => void cancels++,
        stalledReaderMs: stalledMs,
      }),
    );
    served = await serveApp(app, { port: 0, hostname: "127.0.0.1" });
  });
  afterAll(() => served.close());

  it("is cut after the stated deadline, freeing the slot for an honest request waiting behind it", async () => {
    expect(stalledReaderMsMax).toBeGreaterThan(stalledMs);
    // The attacker: a real socket that sends its request and then never reads a byte.
    const attacker = connect({ host: "127.0.0.1", port: served.port });
    await new Promise<void>((resolve) => attacker.once("connect", resolve));
    attacker.pause();
    attacker.on("error", () => undefined);
    attacker.write("GET /generate HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    // Let its reply fill the socket buffers and take the slot.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const startedAt = Date.now();
    expect(cancels).toBe(0);
    const honest = await fetch(`http://127.0.0.1:${served.port}/generate`);
    const reader = honest.body!.getReader();
    let bytes = 0;
    while (bytes < 3 * chunkText.length) {
      const next = await reader.read();
      if (next.done) break;
      bytes += next.value.byteLength;
    }
    await reader.cancel();
    expect(bytes).toBeGreaterThanOrEqual(3 * chunkText.length);
    const servedAfterMs = Date.now() - startedAt;

    expect(honest.status).toBe(200);
    // Served only once the stalled reader was cut, and not long after its deadline.
    expect(servedAfterMs).toBeGreaterThanOrEqual(stalledMs - 250);
    expect(servedAfterMs).toBeLessThan(stalledMs + 5_000);
    // The server cut it (a paused socket does not even notice until it reads again).
    expect(cancels).toBeGreaterThanOrEqual(1);
    attacker.destroy();
  });

  it("leaves a reader that keeps reading alone, however long the reply", async () => {
    const res = await fetch(`http://127.0.0.1:${served.port}/generate`);
    const reader = res.body!.getReader();
    let bytes = 0;
    const until = Date.now() + 3 * stalledMs;
    while (Date.now() < until) {
      bytes += (await reader.read()).value?.byteLength ?? 0;
      // A slow reader: a pause shorter than the deadline between reads.
      await new Promise((resolve) => setTimeout(resolve, stalledMs / 4));
    }
    expect(bytes).toBeGreaterThan(0);
    const more = await reader.read();
    expect(more.done).toBe(false);
    await reader.cancel();
  });
});
