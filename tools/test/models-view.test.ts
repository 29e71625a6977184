import { describe, expect, it } from "vitest";
import { formatBytes, formatSeconds, untilUnload } from "../src/models/format.js";
import { pullView } from "../src/models/pull-view.js";

function sink() {
  let text = "";
  return { out: { write: (s: string) => void (text += s) } as unknown as NodeJS.WriteStream, text: () => text };
}
const mib = 1024 * 1024;

describe("pull progress", () => {
  it("on a terminal redraws one bar in place with bytes, rate and ETA", () => {
    const s = sink();
    const view = pullView(s.out, true);
    view.line({ status: "pulling manifest" });
    view.line({ status: "downloading x", total: 100 * mib, completed: 25 * mib, bytesPerS: 5 * mib, etaS: 15 });
    view.line({ status: "downloading x", total: 100 * mib, completed: 50 * mib, bytesPerS: 5 * mib, etaS: 10 });
    view.line({ status: "success" });
    const text = s.text();
    expect(text).toContain("pulling manifest\n");
    expect(text).toContain(`\r[${"#".repeat(8)}${".".repeat(22)}] 25% 25 MiB / 100 MiB 5.0 MiB/s ETA 0:15`);
    expect(text).toContain("\r[###############...............] 50% 50 MiB / 100 MiB 5.0 MiB/s ETA 0:10");
    expect(text.endsWith("\n")).toBe(true);
  });

  it("off a terminal prints plain lines, throttled, always ending a download at the figure it reached", () => {
    const s = sink();
    const view = pullView(s.out, false);
    for (let done = 0; done <= 100; done += 10)
      view.line({ status: "downloading x", total: 100, completed: done, bytesPerS: 0 });
    view.line({ status: "loading model" });
    view.end();
    const lines = s.text().trim().split("\n");
    expect(lines).toEqual(["downloading x: 0% 0 B / 100 B", "downloading x: 100% 100 B / 100 B", "loading model"]);
    expect(s.text()).not.toContain("\r");
  });
});

describe("formats", () => {
  it("sizes, durations and time to unload", () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(5 * 1024 ** 3), formatBytes(undefined)]).toEqual([
      "512 B",
      "1.5 KiB",
      "5.0 GiB",
      "-",
    ]);
    expect([formatSeconds(75), formatSeconds(3700)]).toEqual(["1:15", "1:01:40"]);
    expect(untilUnload(null)).toBe("kept loaded");
    expect(untilUnload(undefined)).toBe("-");
    expect(untilUnload(new Date(1_000_000 + 299_000).toISOString(), 1_000_000)).toBe("in 4:59");
  });
});
