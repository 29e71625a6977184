import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { serveApp } from "../src/serve.js";
import { recordingLog } from "./support.js";

describe("serveApp", () => {
  it("resolves with the bound port, logs '<name> listening' with it, and closes", async () => {
    const log = recordingLog();
    const served = await serveApp(
      new Hono().get("/health", (c) => c.json({ ok: true })),
      { port: 0, hostname: "127.0.0.1", log, name: "demo", details: { db: "pglite" } },
    );
    try {
      expect(served.port).toBeGreaterThan(0);
      expect(await (await fetch(`http://127.0.0.1:${served.port}/health`)).json()).toEqual({ ok: true });
      expect(log.lines).toEqual([
        { level: "info", msg: "demo listening", obj: { db: "pglite", bind: "127.0.0.1", port: served.port } },
      ]);
    } finally {
      await served.close();
    }
    await expect(fetch(`http://127.0.0.1:${served.port}/health`)).rejects.toThrow();
  });

  it("rejects when the port is taken, naming it", async () => {
    const first = await serveApp(new Hono(), { port: 0, hostname: "127.0.0.1" });
    try {
      await expect(serveApp(new Hono(), { port: first.port, hostname: "127.0.0.1" })).rejects.toThrow(
        new RegExp(`listening on 127.0.0.1:${first.port}: .*EADDRINUSE`),
      );
    } finally {
      await first.close();
    }
  });
});
