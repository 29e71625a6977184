import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { peerSharing, sharesFileName } from "../src/memory/sharing.js";
import { scratchDir } from "./memory-helpers.js";

describe("per-project sharing with other owners", () => {
  let scratch: ReturnType<typeof scratchDir>;
  let path: string;
  beforeEach(() => {
    scratch = scratchDir();
    path = join(scratch.dir, sharesFileName);
  });
  afterEach(() => scratch.cleanup());

  it("allows exactly the (project, owner) pairs granted, and keeps them across a restart", () => {
    const sharing = peerSharing(false, { path });
    sharing.share({ project: "garden", owner: "eve" });
    sharing.share({ project: "garden", owner: "eve" });
    expect(sharing.allows("eve", "garden")).toBe(true);
    expect(sharing.allows("eve", "taxes")).toBe(false);
    expect(sharing.allows("mallory", "garden")).toBe(false);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const restarted = peerSharing(false, { path });
    expect(restarted.shares()).toEqual([{ project: "garden", owner: "eve" }]);
    expect(restarted.unshare({ project: "garden", owner: "eve" })).toBe(true);
    expect(restarted.unshare({ project: "garden", owner: "eve" })).toBe(false);
    expect(peerSharing(false, { path }).shares()).toEqual([]);
  });

  it("shares nothing when the file is not a valid shares file, and says why", () => {
    writeFileSync(path, JSON.stringify({ version: 1, shares: [{ project: "../etc", owner: "Eve" }] }));
    const logs: string[] = [];
    const sharing = peerSharing(false, { path, log: (m) => logs.push(m) });
    expect(sharing.shares()).toEqual([]);
    expect(logs.join("\n")).toMatch(/nothing is shared with other owners/);
    sharing.share({ project: "garden", owner: "eve" });
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({
      version: 1,
      shares: [{ project: "garden", owner: "eve" }],
    });
  });
});
