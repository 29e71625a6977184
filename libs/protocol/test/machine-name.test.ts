import { describe, expect, it } from "vitest";
import { MachineName, machineNameFromHost } from "../src/common.js";

describe("machineNameFromHost", () => {
  it("makes a host name into one lower-case roster label", () => {
    expect(machineNameFromHost("Annas-MacBook-Pro.local")).toBe("annas-macbook-pro");
    expect(machineNameFromHost("DESKTOP_7QK2")).toBe("desktop-7qk2");
    expect(machineNameFromHost("--x--")).toBe("x");
  });

  it("falls back to 'machine' when nothing usable is left, and always parses", () => {
    for (const host of ["", ".", "___", "-", `${"a".repeat(62)}-b.example`]) {
      const name = machineNameFromHost(host);
      expect(MachineName.safeParse(name).success, host).toBe(true);
    }
    expect(machineNameFromHost("___")).toBe("machine");
  });
});
