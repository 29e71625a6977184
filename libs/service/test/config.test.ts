import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, ConfigFields, ConfigHelp, parseConfig, splitUrlList } from "../src/config.js";

const Schema = z.object({
  POTLUCK_PORT: ConfigFields.port(8321),
  POTLUCK_PEER_MEMORY_ENABLED: ConfigFields.flag(false),
  POTLUCK_NATS_URL: ConfigFields.url(["nats"]).default("nats://127.0.0.1:4222"),
});

describe("parseConfig", () => {
  it("applies defaults when nothing is set", () => {
    expect(parseConfig(Schema, {})).toEqual({
      POTLUCK_PORT: 8321,
      POTLUCK_PEER_MEMORY_ENABLED: false,
      POTLUCK_NATS_URL: "nats://127.0.0.1:4222",
    });
  });

  it("lets a flag override the variable", () => {
    expect(parseConfig(Schema, { POTLUCK_PORT: "9000" }, ["--port", "9001"]).POTLUCK_PORT).toBe(9001);
    expect(parseConfig(Schema, {}, ["--peer-memory-enabled=1"]).POTLUCK_PEER_MEMORY_ENABLED).toBe(true);
  });

  it("names the variable and what it expects on a bad value", () => {
    expect(() => parseConfig(Schema, { POTLUCK_PORT: "eighty" })).toThrow(ConfigError);
    expect(() => parseConfig(Schema, { POTLUCK_PORT: "70000" })).toThrow(
      /POTLUCK_PORT="70000": expected a TCP port 1-65535/,
    );
    expect(() => parseConfig(Schema, { POTLUCK_NATS_URL: "http://x" })).toThrow(/POTLUCK_NATS_URL.*nats:/);
    expect(() => parseConfig(Schema, { POTLUCK_PEER_MEMORY_ENABLED: "maybe" })).toThrow(
      /POTLUCK_PEER_MEMORY_ENABLED.*expected 0 or 1/,
    );
  });
});

describe("a NATS URL setting", () => {
  it("takes a cluster's servers comma-separated, and names the variable when an entry is not nats:", () => {
    const list = "nats://a:4222,nats://tok@b:4222";
    expect(parseConfig(Schema, { POTLUCK_NATS_URL: list }).POTLUCK_NATS_URL).toBe(list);
    expect(() => parseConfig(Schema, { POTLUCK_NATS_URL: "nats://a:4222,http://b" })).toThrow(
      /POTLUCK_NATS_URL=.*comma-separated/,
    );
    expect(() => parseConfig(Schema, { POTLUCK_NATS_URL: "nats://a:4222,,nats://b:4222" })).toThrow(ConfigError);
  });
});

describe("a URL list setting (a hub's coordinators)", () => {
  const Coordinators = z.object({ POTLUCK_COORDINATOR_URL: ConfigFields.urlList(["http", "https"], 2).optional() });
  it("takes one URL or several comma-separated, and refuses a wrong scheme or too many, naming the variable", () => {
    const list = "http://a:8320, https://b:8320";
    expect(
      splitUrlList(parseConfig(Coordinators, { POTLUCK_COORDINATOR_URL: list }).POTLUCK_COORDINATOR_URL ?? ""),
    ).toEqual(["http://a:8320", "https://b:8320"]);
    expect(parseConfig(Coordinators, { POTLUCK_COORDINATOR_URL: "http://a:8320" }).POTLUCK_COORDINATOR_URL).toBe(
      "http://a:8320",
    );
    expect(() => parseConfig(Coordinators, { POTLUCK_COORDINATOR_URL: "http://a:8320,nats://b:4222" })).toThrow(
      /POTLUCK_COORDINATOR_URL=.*up to 2 of them comma-separated/,
    );
    expect(() => parseConfig(Coordinators, { POTLUCK_COORDINATOR_URL: "http://a,http://b,http://c" })).toThrow(
      ConfigError,
    );
  });
});

describe("parseConfig on the command line", () => {
  it("refuses an unknown flag, naming it and the closest known one", () => {
    expect(() => parseConfig(Schema, {}, ["--prot", "9000"])).toThrow(ConfigError);
    expect(() => parseConfig(Schema, {}, ["--prot", "9000"])).toThrow(/unknown flag --prot \(did you mean --port\?\)/);
  });

  it("refuses stray words", () => {
    expect(() => parseConfig(Schema, {}, ["9000"])).toThrow(/unexpected argument 9000/);
  });

  it("reads a bare setting flag as true, and a bare valued one as a bad value naming its variable", () => {
    expect(parseConfig(Schema, {}, ["--peer-memory-enabled"]).POTLUCK_PEER_MEMORY_ENABLED).toBe(true);
    expect(parseConfig(Schema, {}, ["--peer-memory-enabled", "--port", "9002"])).toMatchObject({
      POTLUCK_PEER_MEMORY_ENABLED: true,
      POTLUCK_PORT: 9002,
    });
    expect(() => parseConfig(Schema, {}, ["--port"])).toThrow(/^POTLUCK_PORT="true": .*\(or --port\)$/);
  });

  it("accepts the switches the caller reads itself", () => {
    expect(parseConfig(Schema, {}, ["--check", "--port=9003"], { booleans: ["check"] }).POTLUCK_PORT).toBe(9003);
    expect(() => parseConfig(Schema, {}, ["--check"])).toThrow(/unknown flag --check/);
  });

  it("answers --help with every flag and its variable", () => {
    expect(() => parseConfig(Schema, {}, ["--help"])).toThrow(ConfigHelp);
    expect(() => parseConfig(Schema, {}, ["--help"])).toThrow(/--nats-url {2}\(POTLUCK_NATS_URL\)/);
  });
});
