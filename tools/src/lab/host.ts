import { spawn as spawnChild } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../lib/repo.js";
import { appendBounded, killGroup, run } from "./run.js";
import { labIdEnv } from "./names.js";
import type { ExecOptions, ExecResult, LabProcess, SpawnOptions } from "./types.js";

/** How long a stopped process gets to exit on SIGTERM before SIGKILL. */
export const stopGraceMs = 5_000;

/** The argv prefix that runs a command, and everything it starts, on one CPU; none without a CPU. */
export function pinArgv(cpu: number | undefined): string[] {
  return cpu === undefined ? [] : ["taskset", "-c", String(cpu)];
}

/**
 * argv that runs `argv` on a host: inside namespace `netns`, with `wgDir` mounted on
 * /var/run/wireguard so `wg` and `wireguard-go` there see only that host's sockets, and with the
 * host's name as hostname (services name their machine after it). `unshare --mount --uts` keeps
 * the bind and the hostname private to this command; `ip netns exec` already remounts /sys.
 */
export function inHostArgv(
  netns: string,
  wgDir: string,
  hostname: string,
  argv: readonly string[],
  cpu?: number,
): string[] {
  const script =
    'mount --bind "$0" /var/run/wireguard && printf %s "$1" > /proc/sys/kernel/hostname && shift && exec "$@"';
  // taskset outermost: the affinity is inherited by everything the command starts.
  return [
    ...pinArgv(cpu),
    "ip",
    "netns",
    "exec",
    netns,
    "unshare",
    "--mount",
    "--uts",
    "sh",
    "-c",
    script,
    wgDir,
    hostname,
    ...argv,
  ];
}

export interface HostRuntime {
  netns: string;
  /** The host's name, also its hostname inside. */
  hostname: string;
  runDir: string;
  labId: string;
  /** Every process spawned on the host and not yet exited, for stopProcesses/powerOff/teardown. */
  processes: Set<LabProcess>;
  /** The CPU every process of the host is pinned to (LabOptions.cpus), if any. */
  cpu?: number;
}

export const wgDirOf = (runDir: string) => join(runDir, "wireguard");

/** `env` is merged over this process's environment (PATH etc. stay); the lab tag is always set. */
function hostEnv(rt: HostRuntime, env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  return { ...process.env, ...env, [labIdEnv]: rt.labId };
}

export function execInHost(rt: HostRuntime, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  if (argv.length === 0) return Promise.reject(new Error(`exec in ${rt.netns}: empty argv`));
  return run(inHostArgv(rt.netns, wgDirOf(rt.runDir), rt.hostname, argv, rt.cpu), {
    ...opts,
    env: hostEnv(rt, opts.env),
  });
}

export function spawnInHost(rt: HostRuntime, name: string, argv: string[], opts: SpawnOptions = {}): LabProcess {
  if (argv.length === 0) throw new Error(`spawn ${name} in ${rt.netns}: empty argv`);
  const [command, ...args] = inHostArgv(rt.netns, wgDirOf(rt.runDir), rt.hostname, argv, rt.cpu);
  // detached: the process leads its own group, so stop() reaches its children too.
  const child = spawnChild(command as string, args, {
    env: hostEnv(rt, opts.env),
    // The repo by default: lab processes are the repo's services, started with `--import tsx`,
    // which resolves from the working directory (a `potluck lab up` from elsewhere failed).
    cwd: opts.cwd ?? repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (output = appendBounded(output, d)));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (output = appendBounded(output, d)));
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
    child.once("error", (error) => resolve(`failed to start: ${error.message}`));
  });
  const proc: LabProcess = {
    name,
    pid: child.pid ?? -1,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      killGroup(child.pid, "SIGTERM");
      const timer = setTimeout(() => killGroup(child.pid, "SIGKILL"), stopGraceMs);
      await exited;
      clearTimeout(timer);
      // Stragglers in the group (a service's own children) must not outlive it.
      killGroup(child.pid, "SIGKILL");
    },
  };
  rt.processes.add(proc);
  void exited.then(() => rt.processes.delete(proc));
  return proc;
}
