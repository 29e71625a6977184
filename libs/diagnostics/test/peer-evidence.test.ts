import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import type { networkInterfaces } from "node:os";
import { connect } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";
import { afterAll, describe, expect, it } from "vitest";
import { isOnLink, natsPeerFirewallSource, tcpUnderlayProbe } from "../src/index.js";
import { fwStatus } from "./fakes.js";

const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";

async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return predicate();
}

describe("peers' fw-watcher statuses from real NATS", () => {
  const root = `t${Math.random().toString(36).slice(2, 10)}`;
  const source = natsPeerFirewallSource({ natsUrl, subjectRoot: root });
  afterAll(() => source.close());

  it("keeps each machine's latest status and ignores what is not one", async () => {
    const nc = await connect({ servers: natsUrl });
    try {
      const subjects = subjectsFor(root);
      // The subscription starts in the background: publish until it is heard.
      const heard = await until(() => {
        nc.publish(subjects.fwStatus("linux"), JSON.stringify(fwStatus(false, "linux")));
        return source.latest("linux") !== null;
      });
      expect(heard).toBe(true);
      nc.publish(subjects.fwStatus("linux"), JSON.stringify(fwStatus(true, "linux")));
      nc.publish(subjects.fwStatus("linux"), "{ not json");
      nc.publish(subjects.fwStatus("linux"), JSON.stringify({ machine: "linux", intact: "yes" }));
      await nc.flush();
      expect(await until(() => source.latest("linux")?.status.intact === false)).toBe(true);
      // The two bad messages that followed changed nothing.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(source.latest("linux")?.status.rules[0]?.state).toBe("missing");
      expect(source.latest("linux")!.receivedAtMs).toBeLessThanOrEqual(Date.now());
      expect(source.latest("windows")).toBeNull();
    } finally {
      await nc.close();
    }
  });

  it("without NATS every lookup is null and closing does not hang", async () => {
    const dead = natsPeerFirewallSource({ natsUrl: "nats://127.0.0.1:1", subjectRoot: root });
    expect(dead.latest("linux")).toBeNull();
    await dead.close();
  });
});

describe("the underlay probe", () => {
  const lan = (cidr: string, family: "IPv4" | "IPv6" = "IPv4") => ({
    address: cidr.split("/")[0]!,
    netmask: "",
    family,
    mac: "",
    internal: false,
    cidr,
  });
  const interfaces = {
    eth0: [lan("192.168.1.20/24")],
    potluck0: [lan("100.64.0.2/32")],
    lo: [{ ...lan("127.0.0.1/8"), internal: true }],
  } as unknown as ReturnType<typeof networkInterfaces>;

  it("counts only addresses on an attached network", () => {
    expect(isOnLink("192.168.1.7", interfaces)).toBe(true);
    expect(isOnLink("192.168.2.7", interfaces)).toBe(false);
    // Another mesh address is not on potluck0's "link": the /32 is this machine alone.
    expect(isOnLink("100.64.0.3", interfaces)).toBe(false);
    expect(isOnLink("127.0.0.1", interfaces)).toBe(false);
    expect(isOnLink("not-an-ip", interfaces)).toBe(false);
  });

  it("a listening port and a closed one both prove the host answers; off-link never asks", async () => {
    const loopbackLink = { lo: [lan("127.0.0.1/8")] } as unknown as ReturnType<typeof networkInterfaces>;
    const probe = tcpUnderlayProbe({ interfaces: () => loopbackLink });
    const listening = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
    const open = (listening.address() as AddressInfo).port;
    try {
      expect(await probe.hostAnswers("127.0.0.1", open, AbortSignal.timeout(2_000))).toBe(true);
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      expect(await probe.hostAnswers("127.0.0.1", closedPort, AbortSignal.timeout(2_000))).toBe(true);
      expect(
        await tcpUnderlayProbe({ interfaces: () => ({}) }).hostAnswers("127.0.0.1", open, AbortSignal.timeout(2_000)),
      ).toBe(false);
    } finally {
      await new Promise((resolve) => listening.close(resolve));
    }
  });
});
