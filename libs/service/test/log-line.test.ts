import { describe, expect, it, vi } from "vitest";
import { humanLogLine, serviceLogger } from "../src/log-line.js";

describe("humanLogLine", () => {
  const at = Date.UTC(2026, 11, 2, 12, 4, 5);
  const pino = (fields: Record<string, unknown>) =>
    JSON.stringify({ level: 30, time: at, pid: 1, hostname: "vm", name: "sidecar", msg: "hello", ...fields });

  it("shows time, a label above info, the message and every other field as key=value", () => {
    expect(humanLogLine(pino({ model: "tiny:latest", threads: 1 }))).toBe("12:04:05 hello model=tiny:latest threads=1");
    expect(humanLogLine(pino({ level: 40, reason: "no key set" }))).toBe('12:04:05 WARN hello reason="no key set"');
    expect(humanLogLine(pino({ level: 50, models: ["a", "b"] }))).toBe('12:04:05 ERROR hello models=["a","b"]');
  });

  it("shows an error's message, not its stack", () => {
    const line = pino({ level: 50, err: { type: "Error", message: "boom", stack: "Error: boom\n    at x" } });
    expect(humanLogLine(line)).toBe('12:04:05 ERROR hello err="boom"');
  });

  it("bounds a long field", () => {
    const shown = humanLogLine(pino({ big: "x".repeat(10_000) }));
    expect(shown.length).toBeLessThan(400);
    expect(shown.endsWith("…")).toBe(true);
  });

  it("passes anything that is not a pino line unchanged", () => {
    for (const line of ["[INF] nats-server ready", "{not json", '{"msg":"no level or time"}', ""])
      expect(humanLogLine(line)).toBe(line);
  });
});

describe("serviceLogger", () => {
  function captured(run: () => void): string {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      run();
    } finally {
      spy.mockRestore();
    }
    return lines.join("");
  }

  it("writes readable lines to a terminal, or when POTLUCK_LOG_FORMAT=text", () => {
    for (const options of [{ tty: true }, { format: "text", tty: false }]) {
      const out = captured(() => serviceLogger("sidecar", options).warn({ model: "tiny" }, "slow start"));
      expect(out).toMatch(/^\d\d:\d\d:\d\d WARN slow start model=tiny\n$/);
    }
  });

  it("keeps pino's JSON for a terminal when POTLUCK_LOG_FORMAT=json", () => {
    const log = serviceLogger("sidecar", { format: "json", tty: true });
    // pino's own destination (sonic-boom on fd 1), not the text writer: nothing passes through stdout.write.
    expect(captured(() => log.info("hello"))).toBe("");
  });
});
