import { describe, expect, it } from "vitest";
import { notApplicableHere } from "../src/platform.js";

describe("the fw-watcher off Linux (an injected platform)", () => {
  it("says not applicable on macOS and Windows, and runs on Linux", () => {
    expect(notApplicableHere("darwin")).toBe(
      "not applicable on this OS (darwin): the fw-watcher keeps Linux nftables rules; nothing to do",
    );
    expect(notApplicableHere("win32")).toMatch(/^not applicable on this OS \(win32\)/);
    expect(notApplicableHere("linux")).toBeUndefined();
  });
});
