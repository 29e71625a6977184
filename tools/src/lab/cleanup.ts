import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { labDir, labIdEnv, netnsPattern } from "./names.js";
import { releaseSubnets, rootLinkIds, rootLinkName } from "./rootlink.js";
import { run, sleep } from "./run.js";
import { listStates, ownerAlive, readState, removeLabDir } from "./state.js";

/** How long a SIGKILLed process may take to disappear before cleanup moves on regardless. */
const killWaitMs = 5_000;

/** Lab namespaces on this machine, grouped by lab id. */
export function labNamespaces(): Map<string, string[]> {
  let out = "";
  try {
    out = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  } catch {
    return new Map();
  }
  const byId = new Map<string, string[]>();
  for (const line of out.split("\n")) {
    const name = line.trim().split(/\s+/)[0] ?? "";
    const match = netnsPattern.exec(name);
    if (match?.[1] !== undefined) byId.set(match[1], [...(byId.get(match[1]) ?? []), name]);
  }
  return byId;
}

/** True for a live (not zombie) process. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Processes of lab `id` (or of every lab when id is null): they carry POTLUCK_LAB_ID, or sit in its namespaces. */
export function labPids(id: string | null, namespaces: readonly string[] = []): Map<number, string> {
  const pids = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      const tag = environ.find((e) => e.startsWith(`${labIdEnv}=`));
      if (tag !== undefined && (id === null || tag === `${labIdEnv}=${id}`))
        pids.set(Number(entry), tag.slice(labIdEnv.length + 1));
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  for (const ns of namespaces) {
    try {
      for (const pid of execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split(/\s+/).filter(Boolean)) {
        if (Number(pid) !== process.pid) pids.set(Number(pid), id ?? ns);
      }
    } catch {
      // namespace already gone
    }
  }
  return pids;
}

export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "?";
  }
}

/**
 * Kills every process of lab `id`, deletes its namespaces (with them every veth, bridge and
 * potluck0) and its directory. Synchronous so it also works from a process 'exit' hook.
 * Returns what it removed.
 */
export function destroyLabSync(id: string, namespaces: readonly string[]): string[] {
  const removed: string[] = [];
  const pids = labPids(id, namespaces);
  killAll(pids.keys(), removed);
  const deadline = Date.now() + killWaitMs;
  const wait = new Int32Array(new SharedArrayBuffer(4));
  while ([...pids.keys()].some(running) && Date.now() < deadline) Atomics.wait(wait, 0, 0, 20);
  // Explicitly: a namespace's veths are destroyed asynchronously after `ip netns delete`.
  try {
    execFileSync("ip", ["link", "delete", rootLinkName(id)], { stdio: "ignore" });
    removed.push(`link ${rootLinkName(id)}`);
  } catch {
    // the lab had no root link
  }
  // The LAN namespace last: host links are gone with their namespaces first.
  for (const ns of [...namespaces].sort((a, b) => Number(a.endsWith("-lan")) - Number(b.endsWith("-lan")))) {
    try {
      execFileSync("ip", ["netns", "delete", ns], { stdio: "ignore" });
      removed.push(`netns ${ns}`);
    } catch {
      // already deleted
    }
  }
  removeLabDir(id);
  return removed;
}

/** Async variant for teardown: SIGKILL stragglers (callers stop processes gracefully first). */
export async function destroyLab(id: string, namespaces: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  const pids = labPids(id, namespaces);
  killAll(pids.keys(), removed);
  const deadline = Date.now() + killWaitMs;
  while ([...pids.keys()].some(running) && Date.now() < deadline) await sleep(20);
  // Explicitly: a namespace's veths are destroyed asynchronously after `ip netns delete`.
  if ((await run(["ip", "link", "delete", rootLinkName(id)])).code === 0) removed.push(`link ${rootLinkName(id)}`);
  const order = [...namespaces].sort((a, b) => Number(a.endsWith("-lan")) - Number(b.endsWith("-lan")));
  for (const ns of order) {
    if ((await run(["ip", "netns", "delete", ns])).code === 0) removed.push(`netns ${ns}`);
  }
  removeLabDir(id);
  return removed;
}

/**
 * Removes every lab whose owner process is gone: namespaces `pl-*`, their links and processes,
 * stray processes tagged with a lab id, and lab directories. Labs whose owner is alive (another
 * test or `potluck lab up` running right now) are left alone unless `all` is set.
 */
export async function cleanupLeftovers(options: { all?: boolean } = {}): Promise<string[]> {
  const namespaces = labNamespaces();
  const ids = new Set<string>([
    ...namespaces.keys(),
    ...listStates().map((s) => s.id),
    ...new Set(labPids(null).values()),
    ...rootLinkIds(),
  ]);
  const removed: string[] = [];
  for (const id of ids) {
    const state = readState(id);
    if (options.all !== true && state !== null && ownerAlive(state)) continue;
    removed.push(...(await destroyLab(id, namespaces.get(id) ?? [])));
  }
  releaseSubnets(null, (owner) => {
    const state = readState(owner);
    return state !== null && ownerAlive(state);
  });
  return removed;
}

/** What is left of lab `id` on this machine (empty after a clean teardown): for tests' assertions. */
export function labLeftovers(id: string): string[] {
  const left = (labNamespaces().get(id) ?? []).map((ns) => `netns ${ns}`);
  for (const [pid] of labPids(id)) if (running(pid)) left.push(`process ${pid} (${processName(pid)})`);
  if (rootLinkIds().includes(id)) left.push(`link ${rootLinkName(id)}`);
  if (existsSync(labDir(id))) left.push(`dir ${labDir(id)}`);
  return left;
}

/** SIGKILL every pid, noting each in `removed`; a pid that is already gone is fine. */
function killAll(pids: Iterable<number>, removed: string[]): void {
  for (const pid of pids) {
    removed.push(`process ${pid} (${processName(pid)})`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}
