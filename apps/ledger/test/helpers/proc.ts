import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const mainTs = fileURLToPath(new URL("../../src/main.ts", import.meta.url));

/** Starts the real ledger as a child process with `env` on top of a minimal environment. */
export function spawnLedger(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let out = "";
  const child = spawn(process.execPath, ["--import", "tsx", mainTs], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return { child, output: () => out };
}

/**
 * The ledger as its supervisor (systemd's Restart=on-failure, `potluck up`) runs it: a process
 * that exits on its own is started again, at most `maxRestarts` times. Used where the test is
 * about what survives (every event applied once), not about whether one process does.
 */
export function superviseLedger(
  env: Record<string, string>,
  maxRestarts = 5,
): { output: () => string; restarts: () => number; stop: () => Promise<void> } {
  let current = spawnLedger(env);
  let earlier = "";
  let restarts = 0;
  let stopping = false;
  const watch = (child: ChildProcess) => {
    child.once("exit", (code, signal) => {
      if (stopping || restarts >= maxRestarts) return;
      restarts += 1;
      earlier = `${earlier}${current.output()}\n--- ledger exited (${code ?? signal}); restart ${restarts} ---\n`.slice(
        -20_000,
      );
      current = spawnLedger(env);
      watch(current.child);
    });
  };
  watch(current.child);
  return {
    output: () => (earlier + current.output()).slice(-20_000),
    restarts: () => restarts,
    stop: async () => {
      stopping = true;
      await killHard(current.child);
    },
  };
}

export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()));
}

export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await exited(child);
}

/**
 * Polls until `check` holds. On timeout the error carries the tail of every process in `logs`
 * (e.g. the ledger's own output), so a stuck run says why instead of only that it was stuck.
 */
export async function waitUntil(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
  everyMs = 100,
  logs: readonly { name: string; output: () => string }[] = [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out waiting for ${what}${logs.map((l) => `\n--- ${l.name} output (last 3000 characters) ---\n${l.output().slice(-3000)}`).join("")}`,
  );
}

export function randomPort(): number {
  return 20_000 + Math.floor(Math.random() * 30_000);
}
