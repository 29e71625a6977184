import { createServer, type AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { connectNats, NatsUnavailableError } from "../src/nats.js";
import { recordingLog } from "./support.js";

const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";

/** A port nothing listens on: bound once to learn a free number, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("connectNats", () => {
  it("connects to a running server under the given name, saying nothing about waiting", async () => {
    const log = recordingLog();
    const nc = await connectNats({ url: natsUrl, name: "potluck-service-test", log });
    try {
      expect(nc.info?.server_id).toBeTruthy();
      expect(log.lines.filter((l) => l.msg.startsWith("waiting"))).toEqual([]);
    } finally {
      await nc.close();
    }
  });

  it("logs 'waiting for NATS at <url>' with the secret redacted on every failed attempt, then gives up by name", async () => {
    const port = await closedPort();
    const log = recordingLog();
    const attempt = connectNats({ url: `nats://s3cret-token@127.0.0.1:${port}`, name: "t", log, attemptsMax: 3 });
    await expect(attempt).rejects.toThrow(NatsUnavailableError);
    await expect(attempt).rejects.toThrow(
      new RegExp(`NATS at nats://\\*\\*\\*@127.0.0.1:${port} did not answer after 3 attempts`),
    );
    const waiting = log.lines.filter((l) => l.msg.startsWith(`waiting for NATS at nats://***@127.0.0.1:${port}`));
    expect(waiting.map((l) => l.level)).toEqual(["warn", "warn", "warn"]);
    expect(waiting[0]?.msg).toMatch(/attempt 1 of 3/);
    expect(JSON.stringify(log.lines)).not.toContain("s3cret");
  });

  it("keeps trying until the server appears, then says it connected", async () => {
    const port = await closedPort();
    const log = recordingLog();
    // A fake server that speaks just enough NATS (INFO, then PONG to the client's PING) shows up
    // after the first failed attempts.
    const server = createServer((socket) => {
      socket.write(`INFO {"server_id":"fake","version":"2.10.0","proto":1,"max_payload":1048576}\r\n`);
      socket.on("data", (data) => {
        if (data.toString().includes("PING")) socket.write("PONG\r\n");
      });
    });
    const connecting = connectNats({ url: `nats://127.0.0.1:${port}`, name: "t", log, attemptsMax: 20 });
    while (!log.lines.some((l) => l.msg.startsWith("waiting for NATS"))) await new Promise((r) => setTimeout(r, 20));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const nc = await connecting;
    try {
      expect(
        log.lines.some((l) => l.level === "info" && l.msg === `connected to NATS at nats://127.0.0.1:${port}`),
      ).toBe(true);
    } finally {
      await nc.close();
      server.close();
    }
  });

  it("stops waiting when its signal aborts", async () => {
    const port = await closedPort();
    const controller = new AbortController();
    const log = recordingLog();
    const attempt = connectNats({
      url: `nats://127.0.0.1:${port}`,
      name: "t",
      log,
      attemptsMax: Infinity,
      signal: controller.signal,
    });
    while (log.lines.length === 0) await new Promise((r) => setTimeout(r, 20));
    controller.abort(new Error("shutting down"));
    await expect(attempt).rejects.toThrow("shutting down");
    expect(log.lines[0]?.msg).not.toMatch(/ of /);
  });
});
