import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Subjects, subjectsFor } from "../src/index.js";

describe("Subjects", () => {
  it("builds one-token subjects for valid names", () => {
    expect(Subjects.heartbeat("linux")).toBe("potluck.heartbeat.linux");
    expect(Subjects.usage("alice")).toBe("potluck.usage.alice");
    expect(Subjects.fwStatus("mac")).toBe("potluck.fw.status.mac");
  });

  it("refuses names that would widen or escape a subject", () => {
    for (const bad of ["a.b", "*", ">", "", "UPPER", "x y"])
      expect(() => Subjects.heartbeat(bad)).toThrow(/invalid NATS subject token/);
  });

  it("never yields a subject with wildcards or extra tokens", () => {
    fc.assert(
      fc.property(fc.string(), (name) => {
        try {
          const subject = Subjects.heartbeat(name);
          expect(subject.split(".")).toHaveLength(3);
          expect(subject).not.toMatch(/[*> ]/);
        } catch (error) {
          expect(error).toBeInstanceOf(TypeError);
        }
      }),
    );
  });
});

describe("subjectsFor", () => {
  it("keeps every subject and the usage stream under its root", () => {
    const s = subjectsFor("t-abc123");
    expect(s.heartbeat("mac")).toBe("t-abc123.heartbeat.mac");
    expect(s.usageStream).toEqual({ name: "T_ABC123_USAGE", subjects: ["t-abc123.usage.*"] });
  });

  it("refuses a root that is not a single token", () => {
    for (const bad of ["a.b", "*", "", "UP"]) expect(() => subjectsFor(bad)).toThrow(/invalid NATS subject root/);
  });
});
