import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { Heartbeat, HeartbeatTiming, subjectsFor } from "@potluck/protocol";
import { generateIdentity, privateKeyFromPem, ReplayCache, verifyMessage, type VerifyResult } from "@potluck/peer";
import { describe, expect, it } from "vitest";
import { startHeartbeat } from "../src/heartbeat.js";
import { identityFrom } from "../src/peer/identity.js";

// Real NATS on 127.0.0.1:4222 under a subject root of this test's own.
const key = Buffer.alloc(32, 7).toString("base64");

describe("sidecar heartbeats", () => {
  it("publishes the protocol's Heartbeat with the interface's key and the warm state, and pauses without a key", async () => {
    const prefix = `t${randomBytes(5).toString("hex")}`;
    const nc = await connect({ servers: "nats://127.0.0.1:4222" });
    const beats: Heartbeat[] = [];
    const verdicts: Promise<VerifyResult>[] = [];
    // Each beat is signed with linux's identity key, over exactly the subject and payload sent.
    const linux = generateIdentity();
    const replay = new ReplayCache();
    const sub = nc.subscribe(subjectsFor(prefix).heartbeat("linux"), {
      callback: (_error, msg) => {
        beats.push(Heartbeat.parse(msg.json()));
        verdicts.push(
          verifyMessage(
            { subject: msg.subject, data: msg.data, header: (name) => msg.headers?.get(name) },
            { lookupKey: (m) => (m === "linux" ? linux.publicKey : undefined), replay },
          ),
        );
      },
    });
    await nc.flush();
    let readable = false;
    let warm = false;
    const logs: string[] = [];
    const hb = startHeartbeat({
      nats: nc,
      prefix,
      machine: "linux",
      interfaceName: "potluck0",
      status: () => (warm ? "ok" : "warming"),
      log: (m) => logs.push(m),
      readKey: async () => (readable ? key : null),
      sign: identityFrom("linux", privateKeyFromPem(linux.privateKeyPem)).sign,
    });
    try {
      const waitFor = async (done: () => boolean) => {
        const deadline = Date.now() + 4 * HeartbeatTiming.intervalMs + 10_000;
        while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
        return done();
      };
      expect(await waitFor(() => logs.some((l) => l.includes("heartbeats paused")))).toBe(true);
      expect(beats).toEqual([]);
      readable = true;
      expect(await waitFor(() => beats.length >= 1)).toBe(true);
      expect(beats[0]).toMatchObject({ machine: "linux", wireguardPublicKey: key, status: "warming" });
      warm = true;
      expect(await waitFor(() => beats.some((b) => b.status === "ok"))).toBe(true);
      expect(await Promise.all(verdicts)).toEqual(verdicts.map(() => ({ ok: true, machine: "linux" })));
    } finally {
      hb.stop();
      sub.unsubscribe();
      await nc.drain();
    }
  }, 60_000);
});
