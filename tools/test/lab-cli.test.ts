import { afterAll, describe, expect, it } from "vitest";
import { labLeftovers, newLabId, ownerAlive, pollUntil, readState } from "../src/lab/index.js";
import { potluck } from "./helpers/bin.js";

// `potluck lab up` as a user runs it: a detached owner holds the lab in the background, and the
// lab must still be there after `up` has returned, until `potluck lab down`. Without the mesh
// nothing but the owner's own hold keeps that process (and so the lab) alive.
const id = newLabId();
/** Long enough for an owner whose event loop has emptied to have exited and torn its lab down. */
const settleMs = 4_000;
/** `lab up` waits for the owner; on a loaded machine namespaces and links take a while. */
const labTimeoutMs = 240_000;

afterAll(async () => {
  // Whatever happened above, leave nothing behind: only this test's lab, by its id.
  if (readState(id) !== null) await potluck("lab", "down", "--id", id);
  const state = readState(id);
  if (state !== null && ownerAlive(state)) process.kill(state.ownerPid, "SIGTERM");
  await pollUntil(() => labLeftovers(id).length === 0, { timeoutMs: 30_000 });
}, labTimeoutMs);

describe("potluck lab up --no-mesh", () => {
  it(
    "stays up until potluck lab down: status and exec work seconds later",
    async () => {
      const up = await potluck("lab", "up", "--no-mesh", "--hosts", "a,b", "--id", id);
      expect(up, up.stderr).toMatchObject({ code: 0 });
      const ownerPid = Number(new RegExp(`lab ${id} is up \\(owner pid (\\d+)`).exec(up.stdout)?.[1]);
      expect(ownerPid).toBeGreaterThan(0);

      await new Promise((resolve) => setTimeout(resolve, settleMs));

      const status = await potluck("lab", "status");
      expect(status.code).toBe(0);
      expect(status.stdout).toContain(`lab ${id} (potluck lab up): owner pid ${ownerPid}`);
      const hostLines = status.stdout.split("\n").filter((line) => line.includes(`pl-${id}-`));
      expect(hostLines).toHaveLength(2);
      for (const line of hostLines) expect(line).not.toContain("(missing)");

      // Flags after "--" belong to the command run in the host, not to potluck.
      const exec = await potluck("lab", "exec", "a", "--id", id, "--", "ip", "-4", "-o", "address", "show", "eth0");
      expect(exec, exec.stderr).toMatchObject({ code: 0 });
      expect(exec.stdout).toMatch(/inet 198\.18\.\d+\.\d+/);

      const down = await potluck("lab", "down", "--id", id);
      expect(down, down.stderr).toMatchObject({ code: 0 });
      expect(down.stdout).toContain(`lab ${id} stopped`);
      expect(readState(id)).toBeNull();
      expect(await pollUntil(() => labLeftovers(id).length === 0, { timeoutMs: 30_000 })).toBe(true);
    },
    labTimeoutMs,
  );
});
