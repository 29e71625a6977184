import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Headers } from "@potluck/protocol";
import { ReplayCache } from "../src/replay-cache.js";
import { SigningLimits } from "../src/limits.js";
import { generateIdentity, privateKeyFromPem, signRequest, verifyRequest, type SignedParts } from "../src/signing.js";

const alice = generateIdentity();
const mallory = generateIdentity();
const keys = new Map([["alice", alice.publicKey]]);
const lookupKey = (machine: string) => keys.get(machine);
const parts: SignedParts = { method: "POST", path: "/peer/infer?x=1", body: '{"hello":"world"}', target: "bob" };
const now = 1_800_000_000_000;

function signed(
  p: SignedParts = parts,
  who = { machine: "alice", privateKey: privateKeyFromPem(alice.privateKeyPem) },
  nowMs = now,
  nonce?: string,
) {
  return signRequest(p, who, { nowMs, nonce });
}
function verifyWith(headers: Record<string, string>, p: SignedParts = parts, replay = new ReplayCache(), nowMs = now) {
  return verifyRequest({ ...p, headers: (name) => headers[name] }, { target: p.target, lookupKey, replay, nowMs });
}

describe("signed peer requests", () => {
  it("accepts a request signed by a known key", async () => {
    expect(await verifyWith(signed())).toEqual({ ok: true, machine: "alice" });
  });

  it("names each failed check", async () => {
    expect(await verifyWith({})).toMatchObject({ ok: false, failure: "unsigned" });
    const unknown = signed(parts, { machine: "mallory", privateKey: privateKeyFromPem(mallory.privateKeyPem) });
    expect(await verifyWith(unknown)).toMatchObject({ ok: false, failure: "unknown_key" });
    const forged = signed(parts, { machine: "alice", privateKey: privateKeyFromPem(mallory.privateKeyPem) });
    expect(await verifyWith(forged)).toMatchObject({ ok: false, failure: "bad_signature" });
    const stale = signed(parts, undefined, now - SigningLimits.clockSkewMsMax - 1);
    expect(await verifyWith(stale)).toMatchObject({ ok: false, failure: "stale_timestamp" });
    const future = signed(parts, undefined, now + SigningLimits.clockSkewMsMax + 1);
    expect(await verifyWith(future)).toMatchObject({ ok: false, failure: "stale_timestamp" });
    const replay = new ReplayCache();
    const once = signed();
    expect(await verifyWith(once, parts, replay)).toMatchObject({ ok: true });
    expect(await verifyWith(once, parts, replay)).toMatchObject({ ok: false, failure: "replayed_nonce" });
  });

  it("binds method, path and body: changing any one breaks the signature", async () => {
    const headers = signed();
    for (const changed of [
      { ...parts, method: "GET" },
      { ...parts, path: "/peer/infer?x=2" },
      { ...parts, body: '{"hello":"World"}' },
    ]) {
      expect(await verifyWith(headers, changed)).toMatchObject({ ok: false, failure: "bad_signature" });
    }
  });

  it("binds the target and the signer's name: a request replayed at another machine, or under another name, is refused", async () => {
    const headers = signed();
    // bob received it; replaying it at carol (whose key lookup knows alice too) fails the signature.
    expect(await verifyWith(headers, { ...parts, target: "carol" })).toMatchObject({
      ok: false,
      failure: "bad_signature",
    });
    const aliased = new Map([
      ["alice", alice.publicKey],
      ["id-alice", alice.publicKey],
    ]);
    const replay = new ReplayCache();
    const asAlias: Record<string, string> = { ...headers, [Headers.machine]: "id-alice" };
    expect(
      await verifyRequest(
        { ...parts, headers: (name) => asAlias[name] },
        { target: "bob", lookupKey: (m) => aliased.get(m), replay, nowMs: now },
      ),
    ).toMatchObject({ ok: false, failure: "bad_signature" });
    expect(replay.size).toBe(0);
  });

  it("does not remember nonces of forged requests", async () => {
    const replay = new ReplayCache();
    const forged = signed(
      parts,
      { machine: "alice", privateKey: privateKeyFromPem(mallory.privateKeyPem) },
      now,
      "shared-nonce",
    );
    expect(await verifyWith(forged, parts, replay)).toMatchObject({ failure: "bad_signature" });
    expect(replay.size).toBe(0);
    expect(await verifyWith(signed(parts, undefined, now, "shared-nonce"), parts, replay)).toMatchObject({ ok: true });
  });

  it("stays bounded: a full cache forgets the oldest and refuses anything no newer than it", async () => {
    const replay = new ReplayCache(3);
    for (let i = 0; i < 5; i++)
      expect(await verifyWith(signed(parts, undefined, now + i, `n${i}`), parts, replay, now + 10)).toMatchObject({
        ok: true,
      });
    expect(replay.size).toBe(3);
    // n0 and n1 were forgotten; replaying them must still fail, now as stale.
    expect(await verifyWith(signed(parts, undefined, now + 1, "n1"), parts, replay, now + 10)).toMatchObject({
      ok: false,
      failure: "stale_timestamp",
    });
  });

  it("never throws on arbitrary header values", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string(),
        fc.string(),
        fc.string(),
        fc.string(),
        async (machine, timestamp, nonce, signature) => {
          const result = await verifyWith({
            [Headers.machine]: machine,
            [Headers.timestamp]: timestamp,
            [Headers.nonce]: nonce,
            [Headers.signature]: signature,
          });
          expect(result.ok).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});
