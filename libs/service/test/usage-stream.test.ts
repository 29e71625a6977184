import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureUsageStream, usageReplicasFromEnv, usageStreamConfig } from "../src/usage-stream.js";

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
      { stream: subjectsFor(prefix).usageStream.name, replicas: 1 },
      { stream: subjectsFor(prefix).usageStream.name, replicas: 1 },
    ]);
    expect(await ensureUsageStream(nc, prefix)).toEqual(results[0]);
    const info = await (await jetstreamManager(nc)).streams.info(subjectsFor(prefix).usageStream.name);
    expect(info.config).toMatchObject(usageStreamConfig(prefix));
    expect(info.config.subjects).toEqual([`${prefix}.usage.*`]);
  });

  it("updates an existing stream to a configured count, and leaves it alone when none is configured", async () => {
    const name = subjectsFor(prefix).usageStream.name;
    const jsm = await jetstreamManager(nc);
    // A standalone server stores the count it is given (it keeps one copy whatever the count):
    // the update path is what this checks; the cluster suite checks real copies.
    expect(await ensureUsageStream(nc, prefix, { replicas: 3 })).toEqual({ stream: name, replicas: 3 });
    expect((await jsm.streams.info(name)).config.num_replicas).toBe(3);
    // A process that was not told (a sidecar without POTLUCK_USAGE_REPLICAS) must not shrink it.
    expect(await ensureUsageStream(nc, prefix, { replicas: undefined })).toEqual({ stream: name, replicas: 3 });
    expect(await ensureUsageStream(nc, prefix, { replicas: 1 })).toEqual({ stream: name, replicas: 1 });
    expect((await jsm.streams.info(name)).config).toMatchObject(usageStreamConfig(prefix));
  });
});

describe("POTLUCK_USAGE_REPLICAS", () => {
  it("is unset, or a whole number of copies 1-5, and a bad value names the variable", () => {
    expect(usageReplicasFromEnv({})).toBeUndefined();
    expect(usageReplicasFromEnv({ POTLUCK_USAGE_REPLICAS: "3" })).toBe(3);
    for (const bad of ["0", "6", "2.5", "three"])
      expect(() => usageReplicasFromEnv({ POTLUCK_USAGE_REPLICAS: bad })).toThrow(/POTLUCK_USAGE_REPLICAS.*1-5/);
  });
});
