import { describe, expect, it } from "vitest";
import { natsConnectOptions, natsServerAuthConfig, redactNatsUrl } from "../src/nats-url.js";

describe("NATS URLs with credentials", () => {
  it("takes a lone user part as a token and strips it from the server address", () => {
    expect(natsConnectOptions("nats://s3cret@hub.lan:4222")).toEqual({
      servers: "nats://hub.lan:4222",
      token: "s3cret",
    });
  });

  it("takes user and password, percent-decoded", () => {
    expect(natsConnectOptions("nats://ann:p%40ss%3Aword@10.0.0.2:4222")).toEqual({
      servers: "nats://10.0.0.2:4222",
      user: "ann",
      pass: "p@ss:word",
    });
  });

  it("leaves a URL without credentials alone", () => {
    expect(natsConnectOptions("nats://127.0.0.1:4222")).toEqual({ servers: "nats://127.0.0.1:4222" });
    expect(redactNatsUrl("nats://127.0.0.1:4222")).toBe("nats://127.0.0.1:4222");
    expect(natsServerAuthConfig("nats://127.0.0.1:4222")).toBeUndefined();
  });

  it("redacts credentials for logs", () => {
    expect(redactNatsUrl("nats://s3cret@hub.lan:4222")).toBe("nats://***@hub.lan:4222");
    expect(redactNatsUrl("nats://ann:pw@hub.lan:4222")).toBe("nats://***@hub.lan:4222");
    expect(redactNatsUrl("not a url")).not.toContain("not a url");
  });

  it("writes the server's demand with the credentials quoted", () => {
    expect(natsServerAuthConfig("nats://s3cret@hub.lan:4222")).toBe('authorization { token: "s3cret", timeout: 10 }\n');
    expect(natsServerAuthConfig("nats://ann:a%22b@hub.lan:4222")).toBe(
      'authorization { user: "ann", password: "a\\"b", timeout: 10 }\n',
    );
  });

  it("refuses a URL that is not nats:// or tls://", () => {
    expect(() => natsConnectOptions("http://hub.lan:4222")).toThrow(/nats:\/\//);
  });
});
