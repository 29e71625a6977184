import { request } from "node:http";
import { ErrorBody } from "@potluck/protocol";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limitBody } from "../src/body-limit.js";
import { jsonErrors } from "../src/errors.js";
import { serveApp, type ServedApp } from "../src/serve.js";
import { floodChunkedBody } from "../src/testing.js";

const bytesMax = 64 * 1024;

function buildApp() {
  const app = new Hono()
    .use("/echo", limitBody({ bytesMax }))
    .use("/named", limitBody({ bytesMax: 16, what: "events" }))
    .post("/echo", async (c) =>
      c.json({ bytes: (await c.req.arrayBuffer()).byteLength, text: (await c.req.text()).slice(0, 10) }),
    )
    .post("/named", async (c) => c.json(await c.req.json()));
  return jsonErrors(app);
}

describe("limitBody over a real node:http server", () => {
  let served: ServedApp;
  beforeAll(async () => {
    served = await serveApp(buildApp(), { port: 0, hostname: "127.0.0.1" });
  });
  afterAll(async () => {
    await served.close();
  });

  it("passes a body within the limit, chunked or not, to every reader", async () => {
    const small = await fetch(`http://127.0.0.1:${served.port}/echo`, { method: "POST", body: "hello world" });
    expect(await small.json()).toEqual({ bytes: 11, text: "hello worl" });
    const chunked = await postChunked(served.port, "/echo", { chunk: Buffer.alloc(1024, "a"), chunks: 64, end: true });
    expect(chunked.status).toBe(200);
    expect(JSON.parse(chunked.body)).toMatchObject({ bytes: bytesMax });
  });

  it("refuses a declared length over the limit before reading it", async () => {
    const res = await fetch(`http://127.0.0.1:${served.port}/echo`, {
      method: "POST",
      body: Buffer.alloc(bytesMax + 1),
    });
    expect(res.status).toBe(413);
    expect(ErrorBody.parse(await res.json()).error).toEqual({
      code: "body_too_large",
      message: `body: larger than ${bytesMax} bytes`,
      field: "body",
    });
  });

  it("answers 413 to a chunked body while it is still streaming: the rest is never held", async () => {
    // Twice the limit is sent and the request is never ended: a server that buffered the whole
    // body before judging it could not answer at all.
    const res = await postChunked(served.port, "/echo", {
      chunk: Buffer.alloc(4096, "b"),
      chunks: (2 * bytesMax) / 4096,
      end: false,
    });
    expect(res.status).toBe(413);
    expect(ErrorBody.parse(JSON.parse(res.body)).error.code).toBe("body_too_large");
    expect(res.ended).toBe(false);
  });

  it("bounds a GET that declares a chunked body too (a signature check may read it)", async () => {
    const res = await floodChunkedBody(served.port, { method: "GET", path: "/echo", totalBytes: 300 * 1024 * 1024 });
    expect(res.status).toBe(413);
    // Answered within a few socket buffers, not after the whole body.
    expect(res.sentBytes).toBeLessThan(16 * 1024 * 1024);
  });

  it("names the body in the answer when the route calls it something else", async () => {
    const res = await fetch(`http://127.0.0.1:${served.port}/named`, {
      method: "POST",
      body: JSON.stringify({ x: "0123456789abcdef" }),
    });
    expect(res.status).toBe(413);
    expect(ErrorBody.parse(await res.json()).error).toMatchObject({
      message: "events: larger than 16 bytes",
      field: "events",
    });
  });
});

describe("limitBody without a node server (app.request)", () => {
  it("counts a streamed body with no length as it is read", async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        // An endless body: only the limit stops it.
        controller.enqueue(new Uint8Array(8192));
      },
    });
    const res = await buildApp().request("/echo", { method: "POST", body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(pulled).toBeLessThanOrEqual(bytesMax / 8192 + 2);
  });

  it("leaves the body readable by json() and text()", async () => {
    const res = await buildApp().request("/named", { method: "POST", body: JSON.stringify({ a: 1 }) });
    expect(await res.json()).toEqual({ a: 1 });
  });
});

/**
 * Posts `chunks` copies of `chunk` with Transfer-Encoding: chunked, each after the previous one
 * is flushed, and resolves with the answer; with `end: false` the request is never finished.
 */
function postChunked(
  port: number,
  path: string,
  options: { chunk: Buffer; chunks: number; end: boolean },
): Promise<{ status: number; body: string; ended: boolean }> {
  return new Promise((resolve, reject) => {
    let ended = false;
    const req = request(
      { host: "127.0.0.1", port, path, method: "POST", headers: { "transfer-encoding": "chunked" } },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (part: Buffer) => parts.push(part));
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString("utf8"), ended });
          req.destroy();
        });
      },
    );
    req.on("error", reject);
    let sent = 0;
    const writeNext = () => {
      if (sent === options.chunks) {
        if (options.end) {
          ended = true;
          req.end();
        }
        return;
      }
      sent++;
      req.write(options.chunk, writeNext);
    };
    writeNext();
  });
}
