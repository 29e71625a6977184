import { HeartbeatTiming } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock.js";
import { HeartbeatTracker } from "../src/heartbeats.js";

// Liveness on the coordinator's injectable clock: no test here sleeps.
const key = "q".repeat(42) + "A=";
const { offlineAfterMs, reconnectGraceMs, intervalMs } = HeartbeatTiming;

describe("heartbeat timing", () => {
  it("relates the constants: offline needs two missed intervals plus the grace", () => {
    expect(offlineAfterMs).toBe(2 * intervalMs + reconnectGraceMs);
    expect(reconnectGraceMs).toBeGreaterThan(intervalMs);
  });
});

describe("HeartbeatTracker", () => {
  it("says never_seen before the first heartbeat", () => {
    const tracker = new HeartbeatTracker(new ManualClock());
    expect(tracker.stateOf("mac")).toBe("never_seen");
  });

  it("is online through the grace, offline only after the timeout", () => {
    const clock = new ManualClock();
    const tracker = new HeartbeatTracker(clock);
    clock.advance(60_000); // long after start-up, so the start-up grace plays no part
    tracker.record("mac", key, 1);
    clock.advance(reconnectGraceMs);
    expect(tracker.stateOf("mac")).toBe("online");
    clock.advance(offlineAfterMs - reconnectGraceMs);
    expect(tracker.stateOf("mac")).toBe("online");
    clock.advance(1);
    expect(tracker.stateOf("mac")).toBe("offline");
    tracker.record("mac", key, 2);
    expect(tracker.stateOf("mac")).toBe("online");
  });

  it("does not blame machines for the coordinator's own NATS outage", () => {
    const clock = new ManualClock();
    const tracker = new HeartbeatTracker(clock);
    clock.advance(60_000);
    tracker.record("mac", key, 1);
    tracker.record("gone", key, 1);
    clock.advance(offlineAfterMs + 1);
    expect(tracker.stateOf("gone")).toBe("offline");
    tracker.record("mac", key, 2);
    clock.advance(1_000);
    tracker.noteDisconnect();
    clock.advance(5 * 60_000); // five minutes without NATS
    expect(tracker.stateOf("mac")).toBe("online"); // we can't hear anyone; not their fault
    tracker.noteReconnect();
    clock.advance(offlineAfterMs);
    expect(tracker.stateOf("mac")).toBe("online");
    expect(tracker.stateOf("gone")).toBe("offline"); // was offline before the outage
    clock.advance(1);
    expect(tracker.stateOf("mac")).toBe("offline");
  });

  it("after a restart, keeps a recently heard machine online for the grace but not a long-silent one", () => {
    const clock = new ManualClock();
    const start = clock.nowMs();
    const tracker = new HeartbeatTracker(clock);
    tracker.seed("recent", start - 3_000, key);
    tracker.seed("stale", start - 10 * 60_000, key);
    expect(tracker.stateOf("recent")).toBe("online");
    expect(tracker.stateOf("stale")).toBe("offline");
    clock.advance(offlineAfterMs + 1);
    expect(tracker.stateOf("recent")).toBe("offline");
  });

  it("reports transitions once per change on sweep", () => {
    const clock = new ManualClock();
    const tracker = new HeartbeatTracker(clock);
    clock.advance(60_000);
    expect(tracker.sweep(["mac"])).toEqual([]); // never seen, still never seen
    tracker.record("mac", key, 1);
    expect(tracker.sweep(["mac"])).toEqual([{ machine: "mac", state: "online" }]);
    expect(tracker.sweep(["mac"])).toEqual([]);
    clock.advance(offlineAfterMs + 1);
    expect(tracker.sweep(["mac"])).toEqual([{ machine: "mac", state: "offline" }]);
  });

  it("hands out dirty receive times once, bounded per batch", () => {
    const tracker = new HeartbeatTracker(new ManualClock());
    for (let i = 0; i < 5; i++) tracker.record(`m${i}`, key, i);
    expect(tracker.takeDirty(3)).toHaveLength(3);
    expect(tracker.takeDirty(3)).toHaveLength(2);
    expect(tracker.takeDirty(3)).toHaveLength(0);
  });
});
