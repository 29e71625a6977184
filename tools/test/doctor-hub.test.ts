import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";
import { ensureUsageConsumer } from "@potluck/ledger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hubHealth, renderHubHealth } from "../src/cli/hub/health.js";

// `potluck doctor --hub` against the machine's standalone NATS and a listed server that is down;
// tools/test/e2e/cluster.test.ts checks it against a real three-server cluster.
const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";
const prefix = `dh${randomBytes(4).toString("hex")}`;
let nc: NatsConnection;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  nc = await connect({ servers: natsUrl });
});
afterAll(async () => {
  await (await jetstreamManager(nc)).streams.delete(subjectsFor(prefix).usageStream.name).catch(() => undefined);
  await nc.close();
});

describe("doctor --hub", () => {
  it("names a listed server that is down, the stream's copies, the consumer's lag and the database", async () => {
    const dead = `nats://127.0.0.1:${await closedPort()}`;
    // No stream yet: the stream fails, and the consumer behind it is suppressed, not blamed.
    const before = await hubHealth({ natsUrl: `${natsUrl},${dead}`, prefix, consumer: "ledger" });
    expect(before.checks.map((c) => [c.part.split(" ")[0], c.status])).toEqual([
      ["nats", "ok"],
      ["nats", "fail"],
      ["stream", "fail"],
      ["consumer", "suppressed"],
    ]);
    expect(before.healthy).toBe(false);
    // A new hub's first sight: the missing stream is named with its subject root and what creates it.
    expect(before.checks[2]?.detail).toMatch(
      new RegExp(`does not exist under the subject root "${prefix}".*start the ledger`),
    );

    await ensureUsageConsumer(nc, prefix, "ledger");
    for (let i = 0; i < 3; i++) await jetstream(nc).publish(subjectsFor(prefix).usage("home"), "{}");
    const health = await hubHealth({
      natsUrl,
      prefix,
      consumer: "ledger",
      database: { shown: "postgres://db/x", ping: () => Promise.reject(new Error("connection refused")) },
    });
    const byPart = Object.fromEntries(health.checks.map((c) => [c.part.split(" ")[0], c]));
    expect(byPart.stream?.detail).toMatch(/3 messages; replicas 1 of 1 current \(standalone server: one copy\)/);
    expect(byPart.consumer?.detail).toMatch(/^lag 3 \(3 not yet delivered, 0 awaiting ack\)/);
    expect(byPart.database).toMatchObject({ status: "fail", detail: "unreachable: Error: connection refused" });
    expect(health.healthy).toBe(false);
    expect(renderHubHealth(health)).toMatch(/FAIL database postgres:\/\/db\/x: unreachable[\s\S]*hub NOT healthy\n$/);

    const ok = await hubHealth({
      natsUrl,
      prefix,
      consumer: "ledger",
      database: { shown: "db", ping: async () => {} },
    });
    expect(ok.healthy).toBe(true);
  });
});
