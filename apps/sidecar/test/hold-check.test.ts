import { signedMessageHeaders, type ReceivedMessage } from "@potluck/peer";
import { subjectsFor, type UsageEvent } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { streamHoldChecker, type HoldClaim } from "../src/usage/hold-check.js";
import { newIdentity } from "./harness.js";

// The serving side reads a requester's hold from the usage stream and checks it before the job
// runs. The stream here is a map of sequence → message, each message signed for real.
const mac = newIdentity("mac");
const eve = newIdentity("evebox");
const keys = new Map([
  ["mac", mac.publicKey],
  ["evebox", eve.publicKey],
]);
const subjects = subjectsFor("potluck");

function hold(overrides: Partial<UsageEvent> = {}): UsageEvent {
  return {
    eventId: "job-1:hold",
    jobId: "job-1",
    kind: "hold",
    account: "home",
    counterparty: "eve",
    servedBy: "evebox",
    model: "m",
    tokens: 100,
    amount: 2_662,
    at: new Date(0).toISOString(),
    ...overrides,
  };
}

function signed(event: UsageEvent, by = mac): ReceivedMessage {
  const subject = subjects.usage(event.account);
  const payload = JSON.stringify(event);
  const headers = signedMessageHeaders(subject, payload, by.sign);
  return { subject, data: new TextEncoder().encode(payload), header: (name) => headers.get(name) };
}

const claim: HoldClaim = {
  eventId: "job-1:hold",
  seq: 7,
  jobId: "job-1",
  caller: "mac",
  callerOwner: "home",
  payee: "eve",
};

function checkerOver(stream: Map<number, ReceivedMessage>) {
  return streamHoldChecker({ read: async (seq) => stream.get(seq), lookupKey: async (m) => keys.get(m) });
}

describe("streamHoldChecker", () => {
  it("accepts the caller's own signed hold for this job, paying this owner, with its amount", async () => {
    const verdict = await checkerOver(new Map([[7, signed(hold())]])).check(claim);
    expect(verdict).toEqual({ ok: true, amount: 2_662 });
  });

  it("refuses a made-up sequence, another job's hold, another account, another payee or a non-hold with 402", async () => {
    const cases: Array<[Map<number, ReceivedMessage>, RegExp]> = [
      [new Map(), /no hold at sequence 7/],
      [new Map([[7, signed(hold({ jobId: "job-2", eventId: "job-1:hold" }))]]), /holds for job job-2, not job-1/],
      [new Map([[7, signed(hold({ eventId: "job-9:hold" }))]]), /is not hold job-1:hold/],
      [new Map([[7, signed(hold({ account: "someone" }))]]), /on someone's account, not home's/],
      [new Map([[7, signed(hold({ counterparty: "mallory" }))]]), /pays mallory, not eve/],
      [new Map([[7, signed(hold({ kind: "settle", ref: "job-1:hold" }))]]), /is not hold job-1:hold/],
    ];
    for (const [stream, why] of cases) {
      const verdict = await checkerOver(stream).check(claim);
      expect(verdict).toMatchObject({ ok: false, status: 402, code: "hold_not_found" });
      expect(verdict.ok === false && verdict.message).toMatch(why);
    }
  });

  it("refuses a hold signed by another machine, or altered after signing", async () => {
    const byEve = await checkerOver(new Map([[7, signed(hold(), eve)]])).check(claim);
    expect(byEve).toMatchObject({ ok: false, status: 402, code: "hold_not_signed" });
    expect(byEve.ok === false && byEve.message).toContain("not signed by mac (signed by evebox)");
    const original = signed(hold());
    const altered = { ...original, data: new TextEncoder().encode(JSON.stringify(hold({ tokens: 101 }))) };
    expect(await checkerOver(new Map([[7, altered]])).check(claim)).toMatchObject({
      ok: false,
      code: "hold_not_signed",
    });
  });

  it("says the stream could not be read (503), rather than refusing the hold, when NATS fails", async () => {
    const failing = streamHoldChecker({
      read: async () => {
        throw new Error("TIMEOUT");
      },
      lookupKey: async (m) => keys.get(m),
    });
    expect(await failing.check(claim)).toMatchObject({ ok: false, status: 503, code: "hold_unverifiable" });
  });
});
