import { describe, expect, it } from "vitest";
import { failureSpans, outageAfter, parseAttempts, type Attempt } from "../src/demo/prompt-loop.js";

const ok = (start: number): Attempt => ({ start, end: start + 10, ok: true, servedBy: "linux" });
const bad = (start: number, error = "data-plane"): Attempt => ({ start, end: start + 50, ok: false, error });

describe("prompt loop accounting", () => {
  it("groups consecutive failures into spans and ignores a line cut by the stop signal", () => {
    const lines =
      [ok(0), bad(100), bad(200), ok(300), bad(400)].map((a) => JSON.stringify(a)).join("\n") + '\n{"start":5';
    const attempts = parseAttempts(`noise\n${lines}`);
    expect(attempts).toHaveLength(5);
    expect(failureSpans(attempts)).toEqual([
      { from: 100, to: 250, failures: 2, errors: ["data-plane", "data-plane"], recoveredAt: 310 },
      { from: 400, to: 450, failures: 1, errors: ["data-plane"] },
    ]);
  });

  it("measures the outage from the event to the last failure after it, not before it", () => {
    const attempts = [bad(0), ok(100), ok(1_000), bad(1_100), bad(1_600), ok(2_400)];
    expect(outageAfter(attempts, 1_000)).toMatchObject({ outageMs: 650, spans: [{ from: 1_100, failures: 2 }] });
    expect(outageAfter([ok(0), ok(100)], 50).outageMs).toBe(0);
  });
});
