import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { FwStatus, subjectsFor, type FwStatus as Status } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFwWatcherConfig, startFwWatcherService } from "../src/index.js";
import { createNetns, mullvadTable, ownRules, type TestNetns } from "./netns.js";

const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";

async function until(probe: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Watch mode as main.ts, the lab and tests start it, in-process against a throwaway namespace. */
describe("startFwWatcherService", () => {
  let ns: TestNetns;
  beforeAll(async () => {
    ns = await createNetns("svc");
    await ns.load(mullvadTable);
  });
  afterAll(async () => {
    await ns?.remove();
  });

  it("repairs the firewall, publishes on the injected connection, serves its status, and removes its rules on close", async () => {
    const root = `t${randomBytes(5).toString("hex")}`;
    const nc = await connect({ servers: natsUrl });
    const received: Status[] = [];
    const sub = nc.subscribe(subjectsFor(root).fwStatus("linux"));
    void (async () => {
      for await (const msg of sub) received.push(FwStatus.parse(msg.json()));
    })();
    await nc.flush();
    const config = loadFwWatcherConfig(
      {
        POTLUCK_FW_NFT: ns.nftCommand,
        POTLUCK_MACHINE: "linux",
        POTLUCK_NATS_PREFIX: root,
        POTLUCK_FW_WATCH_INTERVAL: "0.2",
      },
      [],
    );
    const service = startFwWatcherService(config, { nats: nc });
    try {
      await until(() => received.some((s) => s.intact && s.reapplyCount === 1));
      expect((await ownRules(ns)).length).toBe(2);
      const res = await service.app.request("/status", { headers: { host: "127.0.0.1:8323" } });
      expect(FwStatus.parse(await res.json()).intact).toBe(true);
      expect((await service.app.request("/status", { headers: { host: "evil.example" } })).status).toBe(403);
    } finally {
      await service.close();
    }
    expect((await ownRules(ns)).length).toBe(0);
    expect(nc.isClosed()).toBe(false);
    await nc.close();
  });
});
