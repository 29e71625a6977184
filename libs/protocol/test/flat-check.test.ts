import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { check, checkUsageEvent, flatCheck, UsageEvent } from "../src/index.js";

const valid: UsageEvent = {
  eventId: "ev-1",
  jobId: "job.1:a_b",
  kind: "earn",
  account: "ann",
  counterparty: "bob-2",
  servedBy: "box1",
  model: "tiny",
  tokens: 10,
  amount: 25,
  at: "2026-11-27T06:47:00.000Z",
};

/** Values on and around the edges of every rule in UsageEvent, plus other types. */
const edgy: unknown[] = [
  "",
  "a",
  "A",
  "a-",
  "-a",
  "a_",
  "_a",
  "a_b",
  "a.b:c",
  "a b",
  "é",
  "a\u0000",
  "\n",
  "x".repeat(63),
  "x".repeat(64),
  "x".repeat(128),
  "x".repeat(129),
  "m".repeat(256),
  "m".repeat(257),
  "earn",
  "spend",
  "EARN",
  "hold",
  "2026-11-27T06:47:00Z",
  "2026-11-27T06:47:00.123456+01:00",
  "2024-02-29T00:00:00Z",
  "2026-02-29T00:00:00Z",
  "2026-11-27T24:00:00Z",
  "2026-11-27 06:47:00Z",
  "2026-11-27T06:47:00",
  0,
  -0,
  1,
  -1,
  1.5,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  Infinity,
  -Infinity,
  Number.NaN,
  1e300,
  "1",
  null,
  undefined,
  true,
  [],
  {},
  ["a"],
  { a: 1 },
  1n,
];

const DELETE = Symbol("delete");
const mutated: fc.Arbitrary<unknown> = fc
  .record(
    Object.fromEntries(
      Object.entries(valid).map(([k, v]) => [
        k,
        fc.oneof(
          { arbitrary: fc.constant<unknown>(v), weight: 6 },
          { arbitrary: fc.constantFrom(...edgy), weight: 3 },
          { arbitrary: fc.oneof(fc.string(), fc.integer(), fc.double()), weight: 1 },
          { arbitrary: fc.constant(DELETE), weight: 1 },
        ),
      ]),
    ),
  )
  .chain((obj) =>
    fc.dictionary(fc.string(), fc.anything(), { maxKeys: 2 }).map((extra) => {
      const out: Record<string, unknown> = { ...extra };
      for (const [k, v] of Object.entries(obj)) if (v !== DELETE) out[k] = v;
      return out;
    }),
  );

describe("flatCheck", () => {
  it("compiles UsageEvent to the fast path", () => {
    expect(checkUsageEvent.fast).toBe(true);
  });

  it("gives zod's verdict and zod's data for any input", () => {
    const same = (input: unknown) => {
      const fast = checkUsageEvent(input);
      const slow = check(UsageEvent, input);
      expect(fast).toStrictEqual(slow);
      if (fast.ok && slow.ok) expect(Object.keys(fast.data)).toEqual(Object.keys(slow.data));
    };
    same(valid);
    for (const k of Object.keys(valid)) for (const v of edgy) same({ ...valid, [k]: v });
    // The optional ref (a settlement's hold): present, absent, present as undefined, malformed.
    for (const v of [...edgy, "job-1:hold", undefined]) same({ ...valid, kind: "settle", ref: v });
    fc.assert(fc.property(mutated, same), { numRuns: 5_000 });
    fc.assert(fc.property(fc.anything({ withNullPrototype: true, withBigInt: true }), same), { numRuns: 1_000 });
  });

  it("leaves schemas it cannot reproduce exactly to zod", () => {
    for (const schema of [
      z.object({ a: z.string().trim() }),
      z.strictObject({ a: z.string() }),
      z.object({ a: z.string().default("x") }),
      z.object({ a: z.number().refine((n) => n !== 3) }),
      z.object({ a: z.email() }),
    ]) {
      const run = flatCheck(schema);
      expect(run.fast).toBe(false);
      expect(run({ a: " x " })).toStrictEqual(check(schema, { a: " x " }));
    }
  });
});
