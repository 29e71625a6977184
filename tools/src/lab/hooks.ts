import { destroyLabSync } from "./cleanup.js";

/**
 * Last-resort teardown of this process's labs when it exits without calling teardown (a test
 * threw past its afterAll, an uncaught exception, Ctrl-C, SIGTERM from a test runner).
 * SIGKILL can't be caught: `cleanupLeftovers()` / `potluck lab down` handle that case.
 */
const live = new Map<string, () => readonly string[]>();
let installed = false;

function teardownAllSync(): void {
  for (const [id, namespaces] of live) {
    live.delete(id);
    try {
      destroyLabSync(id, namespaces());
    } catch {
      // exiting anyway; leftovers are cleanupLeftovers()'s job
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else handles it (e.g. `lab up`'s owner tearing down gracefully): they exit, and the
  // 'exit' hook catches whatever they left.
  if (process.listenerCount(signal) > 1) return;
  teardownAllSync();
  // We replaced the default action; with nobody else handling the signal, die of it as before.
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}

export function registerLab(id: string, namespaces: () => readonly string[]): void {
  live.set(id, namespaces);
  if (installed) return;
  installed = true;
  process.on("exit", teardownAllSync);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);
}

export function unregisterLab(id: string): void {
  live.delete(id);
}
