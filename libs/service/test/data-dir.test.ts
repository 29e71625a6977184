import { describe, expect, it } from "vitest";
import { platformDataDir, resolveDataDir } from "../src/index.js";

describe("the data dir by each OS's convention", () => {
  it("macOS: ~/Library/Application Support/Potluck", () => {
    expect(platformDataDir({ platform: "darwin", env: {}, home: "/Users/ann" })).toBe(
      "/Users/ann/Library/Application Support/Potluck",
    );
  });

  it("Windows: %LOCALAPPDATA%\\Potluck, or the profile's AppData\\Local without it", () => {
    const env = { LOCALAPPDATA: "D:\\Profiles\\ann\\AppData\\Local" };
    expect(platformDataDir({ platform: "win32", env, home: "C:\\Users\\ann" })).toBe(
      "D:\\Profiles\\ann\\AppData\\Local\\Potluck",
    );
    expect(platformDataDir({ platform: "win32", env: {}, home: "C:\\Users\\ann" })).toBe(
      "C:\\Users\\ann\\AppData\\Local\\Potluck",
    );
  });

  it("Linux and the rest: ~/.potluck", () => {
    expect(platformDataDir({ platform: "linux", env: {}, home: "/home/ann" })).toBe("/home/ann/.potluck");
    expect(platformDataDir({ platform: "freebsd", env: {}, home: "/home/ann" })).toBe("/home/ann/.potluck");
  });

  it("POTLUCK_DATA_DIR wins over the convention, a --data-dir flag over both", () => {
    const context = { platform: "darwin" as const, env: { POTLUCK_DATA_DIR: "/srv/potluck" }, home: "/Users/ann" };
    expect(resolveDataDir(undefined, context)).toBe("/srv/potluck");
    expect(resolveDataDir("/tmp/flag", context)).toBe("/tmp/flag");
    expect(resolveDataDir(undefined, { ...context, env: {} })).toBe("/Users/ann/Library/Application Support/Potluck");
  });
});
