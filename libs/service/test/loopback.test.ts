import { describe, expect, it } from "vitest";
import { isLoopbackAddress, isLoopbackHost, loopbackHosts } from "../src/loopback.js";

describe("isLoopbackAddress", () => {
  it("knows IPv4, IPv6 and IPv4-mapped loopback", () => {
    for (const address of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
      expect(isLoopbackAddress(address), address).toBe(true);
  });

  it("refuses everything else, and an unknown peer", () => {
    for (const address of ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "1127.0.0.1", "", undefined])
      expect(isLoopbackAddress(address), String(address)).toBe(false);
  });
});

describe("isLoopbackHost", () => {
  it("accepts the loopback names with or without a port", () => {
    expect(loopbackHosts).toEqual(["127.0.0.1", "localhost", "[::1]"]);
    for (const host of ["127.0.0.1", "127.0.0.1:8321", "localhost", "LOCALHOST:80", "[::1]", "[::1]:9"])
      expect(isLoopbackHost(host), host).toBe(true);
  });

  it("answers port edge cases as the URL parser does (the plain forms skip it)", () => {
    for (const host of ["localhost:65535", "127.0.0.1:", "localhost:080", "[::1]:0"])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ["localhost:65536", "127.0.0.1:99999", "localhost:-1", "localhost:8x", "[::1]:123456"])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it("refuses a rebound or missing name", () => {
    for (const host of [
      "evil.example",
      "evil.example:8321",
      "127.0.0.1.evil.example",
      "localhost.evil",
      "",
      "a b",
      undefined,
    ])
      expect(isLoopbackHost(host), String(host)).toBe(false);
  });
});
