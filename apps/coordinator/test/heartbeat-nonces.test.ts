import { CoordinatorLimits, HeartbeatTiming } from "@potluck/protocol";
import { SigningLimits } from "@potluck/peer";
import { describe, expect, it } from "vitest";
import { heartbeatNoncesMax, heartbeatReplayCache } from "../src/nats.js";

// A full roster beating at the real interval, fed to the cache the heartbeat subscriber checks
// nonces against, on a simulated clock (no NATS: the cache alone decides what this costs).
describe("heartbeat nonce cache", () => {
  it("holds every nonce of a full roster's beats for the whole signing window without evicting", () => {
    const cache = heartbeatReplayCache();
    const machines = CoordinatorLimits.rosterMachinesMax;
    const windowMs = SigningLimits.clockSkewMsMax;
    const startMs = 1_000_000_000;
    let nowMs = startMs;
    let sizeMax = 0;
    let refused = 0;
    const sentAt = (round: number, m: number) =>
      startMs + round * HeartbeatTiming.intervalMs + Math.floor((m * HeartbeatTiming.intervalMs) / machines);
    // Two windows and a bit; each machine at its own phase, with up to 200 ms of timer jitter.
    const rounds = Math.ceil((2 * windowMs) / HeartbeatTiming.intervalMs) + 2;
    for (let round = 0; round < rounds; round++) {
      for (let m = 0; m < machines; m++) {
        const sentMs = sentAt(round, m);
        nowMs = sentMs + ((m * 7919) % 200);
        if (!cache.isFresh(`m${m}`, sentMs, nowMs) || !cache.remember(`m${m}`, `n${round}-${m}`, sentMs, nowMs))
          refused++;
      }
      sizeMax = Math.max(sizeMax, cache.size);
    }
    expect(refused).toBe(0);
    // Never full: a full cache would have made room by forgetting (and scanning every signer per beat).
    expect(sizeMax).toBeLessThan(heartbeatNoncesMax);
    // Steady state is a window's beats per machine, at least: nothing in the window was forgotten.
    expect(sizeMax).toBeGreaterThanOrEqual(machines * (windowMs / HeartbeatTiming.intervalMs));
    // A beat replayed from most of a window ago is still recognised as a replay.
    const replayedRound = rounds - windowMs / HeartbeatTiming.intervalMs + 1;
    expect(nowMs - sentAt(replayedRound, 5)).toBeGreaterThan(windowMs - 2 * HeartbeatTiming.intervalMs);
    expect(cache.remember("m5", `n${replayedRound}-5`, sentAt(replayedRound, 5), nowMs)).toBe(false);
  });
});
