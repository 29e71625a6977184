import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { allowedCpus, parseCpuList, pinProcessToCpu, planCpuPin, threadCpus } from "../src/cpu-pin.js";

const linux = { platform: "linux" as const, allowed: [0, 1] };

describe("which CPU a sidecar pins itself to", () => {
  it("pins a model on one thread to the last CPU it may use", () => {
    expect(planCpuPin({ ...linux, setting: "auto", threads: 1, models: 1 })).toMatchObject({ cpu: 1 });
    expect(planCpuPin({ ...linux, setting: "auto", threads: 1, models: 1, allowed: [2, 5, 7] })).toMatchObject({
      cpu: 7,
    });
  });

  it("leaves alone a model on several threads, a sidecar with no model, one CPU already, other systems and off", () => {
    expect(planCpuPin({ ...linux, setting: "auto", threads: 3, models: 1 })).toEqual({
      reason: "the model runs on 3 threads",
    });
    expect(planCpuPin({ ...linux, setting: "auto", threads: 1, models: 0 })).toEqual({
      reason: "no model to run here",
    });
    expect(planCpuPin({ ...linux, setting: "auto", threads: 1, models: 1, allowed: [1] }).cpu).toBeUndefined();
    expect(planCpuPin({ ...linux, setting: "auto", threads: 1, models: 1, platform: "darwin" }).reason).toMatch(
      /Linux only \(this is darwin\)/,
    );
    expect(planCpuPin({ ...linux, setting: "off", threads: 1, models: 1 })).toEqual({ reason: "POTLUCK_CPU_PIN=off" });
  });

  it("takes a CPU number only if this process may use it", () => {
    expect(planCpuPin({ ...linux, setting: 0, threads: 4, models: 0 })).toMatchObject({ cpu: 0 });
    expect(planCpuPin({ ...linux, setting: 9, threads: 1, models: 1 }).reason).toMatch(
      /POTLUCK_CPU_PIN=9 is not among the CPUs this process may use \(0,1\)/,
    );
  });

  it("reads the kernel's CPU lists", () => {
    expect(parseCpuList("0-3,6\n")).toEqual([0, 1, 2, 3, 6]);
    expect(parseCpuList("1")).toEqual([1]);
    expect(allowedCpus("Name:\tnode\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n")).toEqual([0, 1]);
    expect(allowedCpus("Name:\tnode\n")).toEqual([]);
    expect(allowedCpus()).toHaveLength(availableParallelism());
  });
});

describe("pinning a real process", () => {
  it.runIf(process.platform === "linux" && availableParallelism() >= 2)(
    "moves every thread of a running Node process, and threads it starts later, to the one CPU",
    async () => {
      // A Node process already has several threads (V8's platform workers, libuv); on "go" it starts
      // more (the thread pool, for a file read) after the pin.
      const child = spawn(
        process.execPath,
        [
          "-e",
          "process.stdin.once('data', () => require('fs').readFile(__filename, () => process.stdout.write('done')))",
        ],
        { stdio: ["pipe", "pipe", "inherit"] },
      );
      try {
        await new Promise((resolve) => setTimeout(resolve, 300));
        const cpu = allowedCpus().at(-1)!;
        const before = threadCpus(child.pid!);
        expect(before.length).toBeGreaterThan(1);
        expect(await pinProcessToCpu(cpu, child.pid!)).toBeUndefined();
        child.stdin.write("go\n");
        await new Promise((resolve) => child.stdout.once("data", resolve));
        const after = threadCpus(child.pid!);
        expect(after.length).toBeGreaterThan(before.length);
        expect(new Set(after.map((cpus) => cpus.join(",")))).toEqual(new Set([String(cpu)]));
      } finally {
        child.kill();
      }
    },
  );

  it("says why when the pin cannot be applied", async () => {
    expect(await pinProcessToCpu(0, 2 ** 22 + 12_345)).toMatch(/cannot read the CPU lists of process 4206649/);
  });
});
