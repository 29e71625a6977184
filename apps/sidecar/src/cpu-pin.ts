import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import type { Logger } from "@potluck/service";

/**
 * Keeps a one-thread model on one core. With one llama.cpp thread every token is a hand-off:
 * the JS thread asks a pool thread to evaluate, the pool thread computes and wakes the JS thread
 * to sample, and back. On two cores each hand-off wakes the other core from idle, which on a VM
 * is a trip through the hypervisor: raw node-llama-cpp pinned made 1.08-1.18 x the tokens/s of
 * the tiny model unpinned (tools/bench/inference, its two raw rows). Pinned, the waker blocks and
 * the woken thread runs at once on the same core.
 *
 * Only for a model on one thread: more threads need more cores. Linux only (taskset, from
 * util-linux); elsewhere nothing happens.
 */
export type CpuPinSetting = "auto" | "off" | number;

export interface CpuPinPlan {
  /** The CPU to pin to, or undefined with the reason nothing is pinned. */
  cpu?: number;
  reason: string;
}

/**
 * The start-up step: plans from the setting and this process's CPUs, pins, and logs what it did.
 * Never throws: an unpinned sidecar still works, so a failed pin is a warning.
 */
export async function pinForModels(o: {
  setting: CpuPinSetting;
  threads: number;
  models: number;
  log: Logger;
}): Promise<CpuPinPlan> {
  const plan = planCpuPin({ ...o, allowed: allowedCpus(), platform: process.platform });
  if (plan.cpu === undefined) {
    o.log.info({ reason: plan.reason }, "not pinned to a CPU");
    return plan;
  }
  const failed = await pinProcessToCpu(plan.cpu);
  if (failed === undefined) o.log.info({ cpu: plan.cpu, reason: plan.reason }, "pinned to one CPU");
  else o.log.warn({ cpu: plan.cpu }, `could not pin to CPU ${plan.cpu}: ${failed}; running unpinned`);
  return plan;
}

/** What to pin, from the setting, the engine's thread count, and the CPUs this process may use. */
export function planCpuPin(o: {
  setting: CpuPinSetting;
  threads: number;
  models: number;
  allowed: readonly number[];
  platform: NodeJS.Platform;
}): CpuPinPlan {
  if (o.setting === "off") return { reason: "POTLUCK_CPU_PIN=off" };
  if (o.platform !== "linux") return { reason: `CPU pinning is Linux only (this is ${o.platform})` };
  if (typeof o.setting === "number") {
    if (!o.allowed.includes(o.setting))
      return {
        reason: `POTLUCK_CPU_PIN=${o.setting} is not among the CPUs this process may use (${formatCpuList(o.allowed)})`,
      };
    return { cpu: o.setting, reason: `POTLUCK_CPU_PIN=${o.setting}` };
  }
  if (o.models === 0) return { reason: "no model to run here" };
  if (o.threads !== 1) return { reason: `the model runs on ${o.threads} threads` };
  if (o.allowed.length < 2) return { reason: "this process may use one CPU only already" };
  // The last one: CPU 0 takes more of the machine's interrupts and housekeeping.
  return {
    cpu: o.allowed[o.allowed.length - 1]!,
    reason: "one model thread: its hand-offs with the JS thread stay on one core",
  };
}

/** The CPUs this process may run on (Cpus_allowed_list of /proc/self/status), or [] if unknown. */
export function allowedCpus(statusText?: string): number[] {
  let text = statusText;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/status", "utf8");
    } catch {
      return [];
    }
  }
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(text)?.[1];
  return line === undefined ? [] : parseCpuList(line);
}

/** "0-3,6" → [0, 1, 2, 3, 6]; bounded to 4,096 CPUs. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (match === null) continue;
    const from = Number(match[1]);
    const to = Math.min(Number(match[2] ?? match[1]), from + 4_096);
    for (let cpu = from; cpu <= to && cpus.length < 4_096; cpu++) cpus.push(cpu);
  }
  return cpus;
}

function formatCpuList(cpus: readonly number[]): string {
  return cpus.length === 0 ? "unknown" : cpus.join(",");
}

/** The CPUs each thread of process `pid` may run on, from /proc/<pid>/task/<tid>/status. */
export function threadCpus(pid: number): number[][] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    try {
      return allowedCpus(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"));
    } catch {
      return []; // the thread ended between the listing and the read
    }
  });
}

/**
 * Pins every thread of this process to `cpu` (taskset -a); threads started later inherit it from
 * the thread that starts them. Resolves with an error message instead of throwing (an unpinned
 * sidecar still works), also when the kernel's own lists afterwards say otherwise: taskset -a
 * exits 0 even for a process that does not exist.
 */
export async function pinProcessToCpu(cpu: number, pid = process.pid): Promise<string | undefined> {
  const failed = await new Promise<string | undefined>((resolve) => {
    execFile("taskset", ["-a", "-c", "-p", String(cpu), String(pid)], { timeout: 5_000 }, (error, _stdout, stderr) => {
      if (error === null) resolve(undefined);
      else if ((error as NodeJS.ErrnoException).code === "ENOENT")
        resolve("taskset is not installed (Debian: util-linux)");
      else resolve(stderr.trim() || error.message);
    });
  });
  if (failed !== undefined) return failed;
  let lists: number[][];
  try {
    lists = threadCpus(pid);
  } catch (error) {
    return `cannot read the CPU lists of process ${pid}: ${error instanceof Error ? error.message : String(error)}`;
  }
  const stray = lists.find((now) => now.length > 0 && (now.length !== 1 || now[0] !== cpu));
  return stray === undefined
    ? undefined
    : `taskset ran, but a thread of process ${pid} may still use CPUs ${formatCpuList(stray)}`;
}
