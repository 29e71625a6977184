import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const lifecycle = fileURLToPath(new URL("../src/lifecycle.ts", import.meta.url));

/** Runs a script that drains `closables` on a signal, sends it SIGTERM once ready, and collects what it said. */
function drainChild(script: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      `import { drainOnSignal } from ${JSON.stringify(lifecycle)};\n${script}\nconsole.log("ready");`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (data: Buffer) => {
    out += data.toString();
    if (out.includes("ready\n") && !child.killed) child.kill("SIGTERM");
  });
  child.stderr.on("data", (data: Buffer) => (out += data.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, out })));
}

describe("drainOnSignal", () => {
  it("closes the things given in order on SIGTERM, then exits 0", async () => {
    const { code, out } = await drainChild(`
      const closable = (name) => ({ close: async () => console.log("closed " + name) });
      drainOnSignal({ log: (line) => console.log(line), close: [closable("server"), closable("service")] });
      setInterval(() => undefined, 1000);`);
    expect(out).toMatch(/SIGTERM received; draining \(at most 10000 ms\)\nclosed server\nclosed service\n/);
    expect(code).toBe(0);
  }, 30_000);

  it("exits 1 when closing takes longer than allowed", async () => {
    const { code, out } = await drainChild(`
      drainOnSignal({ log: { info: (line) => console.log(line), warn: () => {}, error: () => {} }, drainMsMax: 200, close: () => new Promise(() => {}) });
      setInterval(() => undefined, 1000);`);
    expect(out).toContain("drain took too long; exiting");
    expect(code).toBe(1);
  }, 30_000);
});

describe("drainOnSignal on Windows' signals", () => {
  it("drains on SIGBREAK (Ctrl+Break) as on SIGTERM", async () => {
    // Linux cannot send SIGBREAK; emitting the event is what Node does when Windows delivers it.
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import { drainOnSignal } from ${JSON.stringify(lifecycle)};
         drainOnSignal({ log: (line) => console.log(line), close: async () => console.log("closed") });
         setInterval(() => undefined, 1000);
         process.emit("SIGBREAK", "SIGBREAK");`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (data: Buffer) => (out += data.toString()));
    child.stderr.on("data", (data: Buffer) => (out += data.toString()));
    const code = await new Promise((resolve) => child.on("exit", resolve));
    expect(out).toMatch(/SIGBREAK received; draining \(at most 10000 ms\)\nclosed\n/);
    expect(code).toBe(0);
  }, 30_000);
});
