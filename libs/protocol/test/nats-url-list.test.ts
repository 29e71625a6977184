import { describe, expect, it } from "vitest";
import { natsClusterConnectOptions, natsServerUrls, natsServersMax, redactNatsUrl } from "../src/nats-url.js";

describe("a list of NATS servers in one URL", () => {
  it("splits the servers and takes the credentials from whichever entry carries them", () => {
    expect(natsClusterConnectOptions("nats://s3cret@a:4222, nats://b:4222,nats://c:4222")).toEqual({
      servers: ["nats://a:4222", "nats://b:4222", "nats://c:4222"],
      token: "s3cret",
    });
    expect(natsClusterConnectOptions("nats://a:4222,nats://ann:pw@b:4222")).toEqual({
      servers: ["nats://a:4222", "nats://b:4222"],
      user: "ann",
      pass: "pw",
    });
  });

  it("reads a single URL as a list of one", () => {
    expect(natsClusterConnectOptions("nats://127.0.0.1:4222")).toEqual({ servers: ["nats://127.0.0.1:4222"] });
  });

  it("refuses entries naming different credentials, an empty list, a long one and a non-NATS entry", () => {
    expect(() => natsClusterConnectOptions("nats://one@a:4222,nats://two@b:4222")).toThrow(/same credentials/);
    expect(() => natsServerUrls(" , ")).toThrow(/at least one/);
    const many = Array.from({ length: natsServersMax + 1 }, (_, i) => `nats://h${i}:4222`).join(",");
    expect(() => natsServerUrls(many)).toThrow(/at most/);
    expect(() => natsClusterConnectOptions("nats://a:4222,http://b:4222")).toThrow(/nats:\/\//);
  });

  it("redacts the credentials of every entry", () => {
    expect(redactNatsUrl("nats://s3cret@a:4222,nats://b:4222")).toBe("nats://***@a:4222,nats://b:4222");
    expect(redactNatsUrl("nats://s3cret@a:4222,http://x")).not.toContain("s3cret");
  });
});
