import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SigningLimits } from "../src/limits.js";
import { ReplayCache } from "../src/replay-cache.js";

const now = 1_750_000_000_000;
const skew = SigningLimits.clockSkewMsMax;

/** What verifyRequest asks of the cache for one signed request that passed its signature. */
function accept(cache: ReplayCache, signer: string, nonce: string, sentMs: number, nowMs = now): boolean {
  return cache.isFresh(signer, sentMs, nowMs) && cache.remember(signer, nonce, sentMs, nowMs);
}

describe("ReplayCache", () => {
  it("refuses a replayed nonce, and timestamps more than the skew away either way", () => {
    const cache = new ReplayCache();
    expect(accept(cache, "home2", "n1", now)).toBe(true);
    expect(accept(cache, "home2", "n1", now)).toBe(false);
    expect(cache.isFresh("home2", now + skew + 1, now)).toBe(false);
    expect(cache.isFresh("home2", now - skew - 1, now)).toBe(false);
    // Nonces are per signer: another machine may happen to pick the same one.
    expect(accept(cache, "home3", "n1", now)).toBe(true);
  });

  it("attack 8: a signer stamping now+59 s and flooding the cache moves only its own floor", () => {
    const cache = new ReplayCache(1_000, skew, 100);
    let accepted = 0;
    for (let i = 0; i < 5_000; i++) if (accept(cache, "eve", `e${i}`, now + skew - 1_000 + (i % 7))) accepted++;
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(accepted).toBeLessThan(5_000);
    // The honest machine is untouched by eve's floor.
    expect(accept(cache, "home2", "h1", now)).toBe(true);
    expect(accept(cache, "home2", "h2", now - 30_000)).toBe(true);
    // Eve's own forgotten nonces stay refused: her floor rose to her own timestamps.
    expect(accept(cache, "eve", "e0", now + skew - 1_000)).toBe(false);
  });

  it("keeps an honest signer's requests whatever many flooding signers do (bounded overall)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            signer: fc.integer({ min: 0, max: 20 }),
            ahead: fc.integer({ min: -skew, max: skew }),
            count: fc.integer({ min: 1, max: 200 }),
          }),
          { maxLength: 30 },
        ),
        fc.integer({ min: 0, max: 1_000 }),
        (floods, seed) => {
          const cache = new ReplayCache(2_000, skew, 150);
          let n = 0;
          let honest = 0;
          for (const flood of floods) {
            for (let i = 0; i < flood.count; i++) accept(cache, `eve${flood.signer}`, `f${n++}`, now + flood.ahead);
            // An honest signer at a steady rate, at the receiver's own clock, interleaved.
            expect(accept(cache, "home2", `h${seed}-${honest++}`, now)).toBe(true);
            expect(cache.size).toBeLessThanOrEqual(2_000);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("forgets entries once they leave the window", () => {
    const cache = new ReplayCache(10, skew, 10);
    for (let i = 0; i < 10; i++) accept(cache, `m${i}`, "n", now);
    expect(cache.size).toBe(10);
    expect(accept(cache, "late", "n", now + skew + 1, now + skew + 1)).toBe(true);
    expect(cache.size).toBe(1);
  });
});
