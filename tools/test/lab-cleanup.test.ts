import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../src/lib/repo.js";
import {
  cleanupLeftovers,
  createLab,
  type Lab,
  labDir,
  labLeftovers,
  labNamespaces,
  labPids,
  labRootDir,
  pollUntil,
  run,
} from "../src/lab/index.js";

// Teardown really removes everything, also when the owner dies without calling it. Every check
// is scoped to this test's own lab ids: other engineers' labs may exist at the same time.
const ownerScript = join(repoRoot, "tools/scripts/lab-owner.mjs");
const potluck = join(repoRoot, "bin/potluck.mjs");
const labs: Lab[] = [];
afterAll(async () => {
  await Promise.all(labs.map((l) => l.teardown()));
});

/** A live process; a zombie holds nothing but its pid entry (and this machine's init never reaps). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Asserts nothing of lab `id` is left: namespaces, processes (by tag or pid), its directory. */
function expectGone(id: string, pids: readonly number[]): void {
  expect(labLeftovers(id)).toEqual([]);
  expect(labNamespaces().get(id) ?? [], `namespaces of ${id}`).toEqual([]);
  expect([...labPids(id).keys()], `processes tagged ${id}`).toEqual([]);
  expect(pids.filter(running), `pids of ${id}`).toEqual([]);
  expect(existsSync(labDir(id)), `dir of ${id}`).toBe(false);
}

/** Starts lab-owner.mjs in `mode` and resolves with its lab once it is up. */
function startOwner(mode: string): Promise<{ id: string; pid: number; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ["--import", "tsx", ownerScript, mode], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", (line) =>
      resolve({ ...(JSON.parse(line) as { id: string }), pid: child.pid ?? -1, exited }),
    );
    void exited.then((code) => reject(new Error(`lab-owner ${mode} exited ${code} before its lab was up: ${stderr}`)));
  });
}

describe("lab cleanup", () => {
  it("teardown removes namespaces, potluck0, wireguard-go and every lab process", async () => {
    const lab = await createLab({ hosts: ["a", "b"], rootLink: true });
    labs.push(lab);
    lab.host("a").spawn("sleeper", ["sleep", "3600"]);
    expect((await run(["ip", "link", "show", `pl${lab.id}r`])).code).toBe(0);
    expect((await run(["grep", "-rlx", lab.id, join(labRootDir(), "subnets")])).stdout).not.toBe("");
    const pids = [...labPids(lab.id).keys()];
    const names = await Promise.all(pids.map(async (pid) => (await run(["cat", `/proc/${pid}/comm`])).stdout.trim()));
    expect(names).toContain("wireguard-go");
    expect(names).toContain("sleep");
    expect(labNamespaces().get(lab.id)?.length).toBe(3);
    await lab.teardown();
    await lab.teardown(); // idempotent
    expectGone(lab.id, pids);
    // No potluck0 ever lives outside a lab namespace; the root link went with the LAN namespace.
    expect((await run(["ip", "link", "show", "potluck0"])).code).not.toBe(0);
    expect((await run(["ip", "link", "show", `pl${lab.id}r`])).code).not.toBe(0);
    expect((await run(["grep", "-rlx", lab.id, join(labRootDir(), "subnets")])).stdout).toBe("");
  });

  for (const mode of ["throw", "exit", "wait"] as const) {
    it(`an owner that ${mode === "wait" ? "gets SIGTERM" : mode === "throw" ? "throws" : "calls process.exit"} leaves nothing behind`, async () => {
      const owner = await startOwner(mode);
      // The sleeper enters its namespace a moment after it is spawned, and short-lived helpers
      // (ip, nft) of the owner can be counted for an instant: wait for exactly what must be there.
      const comm = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
        } catch {
          return "";
        }
      };
      let pids: number[] = [];
      const seen = () => {
        pids = [...labPids(owner.id).keys()];
        const names = pids.map(comm);
        return names.includes("sleep") && names.filter((n) => n === "wireguard-go").length >= 2;
      };
      try {
        expect(await pollUntil(seen, { timeoutMs: 30_000 }), pids.map(comm).join(", ")).toBe(true); // two wireguard-go + the sleeper
      } catch (error) {
        // A failed wait must not leave the owner and its lab running after the suite.
        process.kill(owner.pid, "SIGTERM");
        await owner.exited;
        throw error;
      }
      process.kill(owner.pid, mode === "wait" ? "SIGTERM" : "SIGUSR2");
      await owner.exited;
      expectGone(owner.id, pids);
    });
  }

  it("after SIGKILL of the owner, cleanupLeftovers removes its lab but not a lab whose owner is alive", async () => {
    const live = await createLab({ hosts: ["a", "b"] });
    labs.push(live);
    const owner = await startOwner("wait");
    const pids = [...labPids(owner.id).keys()];
    process.kill(owner.pid, "SIGKILL");
    await owner.exited;
    expect(labNamespaces().get(owner.id)?.length).toBe(4); // SIGKILL can't be caught: a real leftover
    const removed = await cleanupLeftovers();
    expect(removed).toContain(`netns pl-${owner.id}-a`);
    expectGone(owner.id, pids);
    expect(labNamespaces().get(live.id)?.length).toBe(3);
    expect(await live.handshakeAgeS("a", "b")).not.toBeNull();
  });

  it("potluck lab up / exec / status / down work by hand and leave nothing behind", async () => {
    const id = `c${Math.random().toString(36).slice(2, 8)}`.slice(0, 7);
    const potluckRun = (...args: string[]) =>
      run([process.execPath, potluck, "lab", ...args], { cwd: repoRoot, timeoutMs: 240_000 });
    const up = await potluckRun("up", "--hosts", "2", "--id", id);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain(`lab ${id} is up`);
    try {
      const wg = await potluckRun("exec", "linux", "--id", id, "--", "wg", "show", "potluck0", "latest-handshakes");
      expect(wg.code, wg.stderr).toBe(0);
      expect(wg.stdout.trim().split("\n")).toHaveLength(1);
      // -w: keep pinging until the first reply; a lone packet can race the first handshake under load.
      const ping = await potluckRun("exec", "mac", "--id", id, "--", "ping", "-c", "1", "-w", "20", "100.64.0.3");
      expect(ping.code, ping.stdout + ping.stderr).toBe(0);
      expect((await potluckRun("exec", "mac", "--id", id, "--", "sh", "-c", "exit 7")).code).toBe(7);
      const status = await potluckRun("status");
      expect(status.stdout).toContain(`lab ${id} (potluck lab up)`);
      expect(status.stdout).toMatch(/handshakes: linux \d+s/);
    } finally {
      const pids = [...labPids(id).keys()];
      const down = await potluckRun("down", "--id", id);
      expect(down.code, down.stderr).toBe(0);
      expect(down.stdout).toContain(`lab ${id} stopped`);
      expectGone(id, pids);
    }
  });
});
