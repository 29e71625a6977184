import { describe, expect, it } from "vitest";
import { classifyNetworkError } from "../src/index.js";

const errno = (code: string, message = code) => Object.assign(new Error(message), { code });

describe("classifyNetworkError", () => {
  it("names node:net errors by kind", () => {
    expect(classifyNetworkError(errno("ECONNREFUSED")).kind).toBe("refused");
    expect(classifyNetworkError(errno("EHOSTUNREACH"))).toEqual({
      kind: "unreachable",
      message: "host unreachable (EHOSTUNREACH)",
    });
    expect(classifyNetworkError(errno("ECONNRESET", "read ECONNRESET"))).toEqual({
      kind: "reset",
      message: "connection reset by the peer (read ECONNRESET)",
    });
    expect(classifyNetworkError(errno("ETIMEDOUT")).message).toMatch(
      /^the peer stopped answering \(connection timed out/,
    );
  });

  it("finds the code fetch wraps in `cause`", () => {
    const wrapped = new TypeError("fetch failed", { cause: errno("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1") });
    expect(classifyNetworkError(wrapped).kind).toBe("refused");
    const cut = new TypeError("fetch failed", { cause: errno("UND_ERR_SOCKET", "other side closed") });
    expect(classifyNetworkError(cut)).toEqual({
      kind: "reset",
      message: "connection reset by the peer (other side closed)",
    });
  });

  it("an abort or timeout of ours names its reason", () => {
    const abort = Object.assign(new Error("The operation was aborted"), {
      name: "AbortError",
      cause: new Error("no response within 30 s"),
    });
    expect(classifyNetworkError(abort)).toEqual({
      kind: "timeout",
      message: "no answer in time (no response within 30 s)",
    });
    expect(classifyNetworkError(new DOMException("The operation timed out", "TimeoutError")).kind).toBe("timeout");
  });

  it("anything unrecognised is unreachable, in its own words", () => {
    expect(classifyNetworkError(new Error("something odd"))).toEqual({ kind: "unreachable", message: "something odd" });
  });
});
