import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { UsageEvent } from "@potluck/protocol";
import { canonicalJson, canonicalSplit, fromUsage } from "../src/ledger/events.js";

/** The definition canonicalJson must keep: JSON.stringify over a copy with keys sorted at every depth. */
function reference(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v === null || typeof v !== "object") return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined)
        Object.defineProperty(out, k, { value: sortKeys(x), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  return JSON.stringify(sortKeys(value));
}

describe("canonical JSON of event payloads", () => {
  it("writes exactly the key-sorted JSON.stringify text for any JSON value", () => {
    // Keys that need escaping, unicode, lone surrogates, __proto__, -0 and huge numbers are all in here.
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(canonicalJson(v)).toBe(reference(v));
      }),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.option(fc.oneof(fc.integer(), fc.string(), fc.jsonValue()), { nil: undefined })),
        (v) => {
          expect(canonicalJson(v)).toBe(reference(v));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("orders keys the same whatever order they arrived in", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[1,{"e":3,"f":2}]},"b":1}',
    );
    expect(canonicalJson(JSON.parse('{"__proto__":{"x":1},"a\\"b":"\\u2028"}'))).toBe(
      reference(JSON.parse('{"__proto__":{"x":1},"a\\"b":"\\u2028"}')),
    );
    expect(canonicalJson([undefined, () => 1])).toBe("[null,null]");
    // A JS object lists array-index keys first, by number; entries already hashed depend on that.
    expect(canonicalJson({ "": 0, "10": 1, "2": 2, a: 3 })).toBe('{"2":2,"10":1,"":0,"a":3}');
  });

  it("writes a usage event's payload and meta in one pass, exactly as two separate serializations would", () => {
    const ev: UsageEvent = {
      eventId: "e-1",
      jobId: "j-1",
      kind: "earn",
      account: "ann",
      counterparty: "bob",
      servedBy: "box",
      model: "tiny",
      tokens: 10,
      amount: 25,
      at: "2026-11-27T00:00:00.000Z",
    };
    const { eventId: _e, kind: _k, account: _a, amount: _m, ...facts } = ev;
    const got = fromUsage(ev);
    expect(got.payload).toBe(canonicalJson(ev));
    expect(got.meta).toBe(canonicalJson(facts));
    // Events with exactly the schema's keys take a path that knows the key order in advance; any
    // values (escapes, unicode, -0, undefined) must still give the generic text.
    const value = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.integer(),
      fc.double(),
      fc.constant(undefined),
      fc.jsonValue(),
    );
    const usage = fc.record({
      eventId: value,
      jobId: value,
      kind: value,
      account: value,
      counterparty: value,
      servedBy: value,
      model: value,
      tokens: value,
      amount: value,
      at: value,
    });
    fc.assert(
      fc.property(usage, (obj) => {
        const { eventId: _e, kind: _k, account: _a, amount: _m, ...rest } = obj;
        const got = fromUsage(obj as unknown as UsageEvent);
        expect(got.payload).toBe(canonicalJson(obj));
        expect(got.meta).toBe(canonicalJson(rest));
      }),
      { numRuns: 1_000 },
    );
    const omit = new Set(["a", "2", ""]);
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(fc.string(), fc.constantFrom("a", "2", "", "10")),
          fc.option(fc.jsonValue(), { nil: undefined }),
        ),
        (obj) => {
          const rest = Object.fromEntries(Object.entries(obj).filter(([k]) => !omit.has(k)));
          expect(canonicalSplit(obj, omit)).toEqual({ whole: canonicalJson(obj), rest: canonicalJson(rest) });
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("refuses nesting deeper than its limit instead of recursing without end", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i += 1) deep = { a: deep };
    expect(() => canonicalJson(deep)).toThrow(/deeper than/);
  });
});
