import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Subjects } from "../src/index.js";

describe("Subjects", () => {
  it("builds one-token subjects for valid names", () => {
    expect(Subjects.heartbeat("linux")).toBe("potluck.heartbeat.linux");
    expect(Subjects.usage("alice")).toBe("potluck.usage.alice");
    expect(Subjects.fwStatus("mac")).toBe("potluck.fw.status.mac");
  });

  it("refuses names that would widen or escape a subject", () => {
    for (const bad of ["a.b", "*", ">", "", "UPPER", "x y"]) expect(() => Subjects.heartbeat(bad)).toThrow(/invalid NATS subject token/);
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
