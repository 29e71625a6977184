import { connect } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { natsPeerFirewallSource } from "../src/index.js";
import { fwStatus } from "./fakes.js";

const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";

const status = fwStatus(true, "linux");

describe("natsPeerFirewallSource on an injected connection", () => {
  it("subscribes on the process's connection and leaves it open when closed", async () => {
    const root = `t${Math.random().toString(36).slice(2, 10)}`;
    const nc = await connect({ servers: natsUrl });
    try {
      const source = natsPeerFirewallSource({ nats: nc, subjectRoot: root });
      await nc.flush();
      for (let i = 0; i < 100 && source.latest("linux") === null; i++) {
        nc.publish(subjectsFor(root).fwStatus("linux"), JSON.stringify(status));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(source.latest("linux")?.status).toEqual(status);
      await source.close();
      expect(nc.isClosed()).toBe(false);
    } finally {
      await nc.close();
    }
  });

  it("tells once that NATS is away, not on every retry", async () => {
    const lines: string[] = [];
    const dead = natsPeerFirewallSource({
      natsUrl: "nats://127.0.0.1:1",
      subjectRoot: "t",
      log: (line) => lines.push(line),
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await dead.close();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/waiting for NATS at nats:\/\/127.0.0.1:1/);
  });
});
