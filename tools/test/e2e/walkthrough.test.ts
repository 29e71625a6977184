import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLab,
  type ExecResult,
  type Lab,
  type LabHost,
  type LabProcess,
  pollUntil,
  waitForOutput,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// The README's "Your first household" walkthrough, read from the README itself and run as
// written on a hub and two machines in the lab, so the README cannot drift from what works. The
// only liberties: COORDINATOR, NATS_SECRET and TOKEN are filled in, each host gets its own HOME (its own
// ~/.potluck, as real machines have), and `npm ci` has already run in this checkout.
const upMs = 300_000;
const machines = ["mac", "linux"] as const;

interface Line {
  command: string;
  /** Marked `# keeps running` in the README: started in the background and waited on. */
  keepsRunning: boolean;
}

/** The shell lines of the ```sh block after `<!-- walkthrough: NAME -->`, comments removed. */
function walkthroughBlock(readme: string, name: string): Line[] {
  const marker = `<!-- walkthrough: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README has no ${marker}`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (block?.[1] === undefined) throw new Error(`README: no sh block after ${marker}`);
  return block[1]
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const hash = l.indexOf(" #");
      return {
        command: (hash < 0 ? l : l.slice(0, hash)).trim(),
        keepsRunning: hash >= 0 && l.slice(hash).includes("keeps running"),
      };
    });
}

/** What a background command prints (or serves) once it is ready for the next step. */
async function waitReady(host: LabHost, proc: LabProcess, command: string): Promise<void> {
  if (/potluck up\b/.test(command)) return waitForOutput(proc, /potluck: up/, `${host.name}: ${command}`, upMs);
  if (/potluck join\b/.test(command)) return waitForOutput(proc, /joined as/, `${host.name}: ${command}`, upMs);
  if (/potluck-sidecar\b/.test(command)) {
    let exited = false;
    void proc.exited.then(() => (exited = true));
    const healthy = async () =>
      (await host.exec(["curl", "-sf", "http://127.0.0.1:8321/health"], { timeoutMs: 5_000 })).stdout.includes('"ok"');
    const ok = await pollUntil(async () => exited || (await healthy()), { timeoutMs: upMs, intervalMs: 500 });
    if (!ok || exited) throw new Error(`${host.name}: ${command}: not healthy: ${proc.output().slice(-2000)}`);
    return;
  }
  throw new Error(`walkthrough: no readiness rule for a background command: ${command}`);
}

let lab: Lab;
let readme: string;
const fill = (command: string, vars: Record<string, string>) =>
  command.replace(/\b(COORDINATOR|NATS_SECRET|TOKEN)\b/g, (v) => vars[v] ?? v);

function envFor(host: LabHost): NodeJS.ProcessEnv {
  const home = join(host.runDir, "home");
  mkdirSync(home, { recursive: true });
  const env: NodeJS.ProcessEnv = { HOME: home };
  // Nothing of the test runner's own configuration leaks in: the README's commands must suffice.
  // (Lab hosts merge this over the runner's environment; an undefined value removes a variable.)
  for (const key of Object.keys(process.env))
    if (key.startsWith("POTLUCK_") || key === "DATABASE_URL") env[key] = undefined;
  return env;
}

const sh = (host: LabHost, command: string, timeoutMs = 180_000): Promise<ExecResult> =>
  host.exec(["sh", "-c", command], { cwd: repoRoot, env: envFor(host), timeoutMs });

async function runBlock(host: LabHost, lines: Line[], vars: Record<string, string>): Promise<ExecResult[]> {
  const results: ExecResult[] = [];
  for (const line of lines) {
    const command = fill(line.command, vars);
    if (line.keepsRunning) {
      // The lab stops a process by its process group, so the shell and what it runs go together.
      await waitReady(
        host,
        host.spawn(command.split(" ").find((w) => !w.includes("=")) ?? "cmd", ["sh", "-c", command], {
          cwd: repoRoot,
          env: envFor(host),
        }),
        command,
      );
      continue;
    }
    const res = await sh(host, command);
    expect(res.code, `${host.name}: ${command}\n${res.stdout}\n${res.stderr}`).toBe(0);
    results.push(res);
  }
  return results;
}

beforeAll(async () => {
  readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  lab = await createLab({ hosts: [...machines], mesh: false, extraHosts: ["hub"] });
}, 120_000);

afterAll(async () => {
  await lab?.teardown();
}, 120_000);

describe("README: Your first household", () => {
  it("parses its blocks: the background commands are marked, the rest run to completion", () => {
    expect(walkthroughBlock(readme, "hub").map((l) => l.keepsRunning)).toEqual([true, false]);
    expect(walkthroughBlock(readme, "machine").every((l) => l.keepsRunning)).toBe(true);
    expect(walkthroughBlock(readme, "ask").some((l) => l.keepsRunning)).toBe(false);
  });

  it("runs as written: the hub, two machines joining it, then peers, doctor and ask --on linux from mac", async () => {
    const hub = lab.host("hub");
    const vars = { COORDINATOR: hub.underlayIp, NATS_SECRET: randomBytes(16).toString("hex") };
    const hubLines = walkthroughBlock(readme, "hub");
    // The hub's background stack once; its token line once per machine (single-use tokens).
    await runBlock(
      hub,
      hubLines.filter((l) => l.keepsRunning),
      vars,
    );
    for (const name of machines) {
      const created = await runBlock(
        hub,
        hubLines.filter((l) => !l.keepsRunning),
        vars,
      );
      const token = created.at(-1)?.stdout.trim() ?? "";
      expect(token.length, "potluck token create printed no token").toBeGreaterThan(10);
      await runBlock(lab.host(name), walkthroughBlock(readme, "machine"), { ...vars, TOKEN: token });
    }

    const mac = lab.host("mac");
    const [peers, doctor, ask] = walkthroughBlock(readme, "ask").map((l) => l.command);
    const listed = await sh(mac, peers ?? "");
    expect(listed.code, listed.stderr).toBe(0);
    for (const name of machines) expect(listed.stdout).toContain(name);
    // The mesh and linux's model come up in their own time: doctor exits 0 once a prompt can get through.
    let said: ExecResult | undefined;
    const usable = await pollUntil(async () => (said = await sh(mac, doctor ?? "")).code === 0, {
      timeoutMs: upMs,
      intervalMs: 2_000,
    });
    expect(usable, `${said?.stdout}\n${said?.stderr}`).toBe(true);
    const answered = await sh(mac, ask ?? "");
    expect(answered.code, answered.stderr).toBe(0);
    expect(answered.stdout).toMatch(/served by linux/);
  }, 900_000);
});
