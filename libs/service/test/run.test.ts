import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const run = fileURLToPath(new URL("../src/run.ts", import.meta.url));
const config = fileURLToPath(new URL("../src/config.ts", import.meta.url));

/** Runs a main built on runService in a child; once it listens, sends SIGTERM. */
function runChild(body: string): Promise<{ code: number | null; out: string }> {
  const script = `import { runService } from ${JSON.stringify(run)};
import { ConfigError } from ${JSON.stringify(config)};
const log = { info: (_fields, line) => console.log(line ?? _fields), warn: () => {}, error: () => {} };
${body}`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (data: Buffer) => {
    out += data.toString();
    if (out.includes("demo listening") && !child.killed) child.kill("SIGTERM");
  });
  child.stderr.on("data", (data: Buffer) => (out += data.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, out })));
}

const app = `{ fetch: () => new Response("ok") }`;

describe("runService", () => {
  it("starts, listens, and on SIGTERM closes the server before the service", async () => {
    const { code, out } = await runChild(`await runService({ name: "demo", log, loadConfig: () => ({ port: 0 }),
      start: async () => ({ app: ${app}, close: async () => console.log("service closed") }),
      listen: (c) => ({ port: c.port, hostname: "127.0.0.1" }) });`);
    expect(out).toMatch(/demo listening[\s\S]*SIGTERM received[\s\S]*service closed/);
    expect(code).toBe(0);
  }, 30_000);

  it("exits 2 naming a bad setting before anything starts", async () => {
    const { code, out } = await runChild(`await runService({ name: "demo", log,
      loadConfig: () => { throw new ConfigError("POTLUCK_PORT", "POTLUCK_PORT=\\"x\\": expected a TCP port"); },
      start: async () => { console.log("started"); return { app: ${app}, close: async () => {} }; },
      listen: () => ({ port: 0, hostname: "127.0.0.1" }) });`);
    expect(out).toContain('potluck-demo: POTLUCK_PORT="x": expected a TCP port');
    expect(out).not.toContain("started");
    expect(code).toBe(2);
  }, 30_000);

  it("exits 1 with one line when the start fails", async () => {
    const { code, out } = await runChild(`await runService({ name: "demo", log, loadConfig: () => ({}),
      start: async () => { throw new Error("opening database: connection refused"); },
      listen: () => ({ port: 0, hostname: "127.0.0.1" }) });`);
    expect(out).toContain("potluck-demo: opening database: connection refused");
    expect(code).toBe(1);
  }, 30_000);
});
