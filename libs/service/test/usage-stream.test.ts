import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureUsageStream, usageStreamConfig } from "../src/usage-stream.js";

const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";
const prefix = `t${randomBytes(5).toString("hex")}`;
let nc: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: natsUrl });
});
afterAll(async () => {
  await (await jetstreamManager(nc)).streams.delete(subjectsFor(prefix).usageStream.name).catch(() => undefined);
  await nc.close();
});

describe("ensureUsageStream", () => {
  it("creates the stream from its one configuration, and again (or concurrently) is a no-op", async () => {
    const results = await Promise.all([ensureUsageStream(nc, prefix), ensureUsageStream(nc, prefix)]);
    expect(results).toEqual([
      { stream: subjectsFor(prefix).usageStream.name },
      { stream: subjectsFor(prefix).usageStream.name },
    ]);
    expect(await ensureUsageStream(nc, prefix)).toEqual(results[0]);
    const info = await (await jetstreamManager(nc)).streams.info(subjectsFor(prefix).usageStream.name);
    expect(info.config).toMatchObject(usageStreamConfig(prefix));
    expect(info.config.subjects).toEqual([`${prefix}.usage.*`]);
  });
});
