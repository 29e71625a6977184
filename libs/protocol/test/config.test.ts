import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, ConfigFields, parseConfig } from "../src/index.js";

const Schema = z.object({
  POTLUCK_PORT: ConfigFields.port(8321),
  POTLUCK_PEER_MEMORY_ENABLED: ConfigFields.flag(false),
  POTLUCK_NATS_URL: ConfigFields.url(["nats"]).default("nats://127.0.0.1:4222"),
});

describe("parseConfig", () => {
  it("applies defaults when nothing is set", () => {
    expect(parseConfig(Schema, {})).toEqual({ POTLUCK_PORT: 8321, POTLUCK_PEER_MEMORY_ENABLED: false, POTLUCK_NATS_URL: "nats://127.0.0.1:4222" });
  });

  it("lets a flag override the variable", () => {
    expect(parseConfig(Schema, { POTLUCK_PORT: "9000" }, ["--port", "9001"]).POTLUCK_PORT).toBe(9001);
    expect(parseConfig(Schema, {}, ["--peer-memory-enabled=1"]).POTLUCK_PEER_MEMORY_ENABLED).toBe(true);
  });

  it("names the variable and what it expects on a bad value", () => {
    expect(() => parseConfig(Schema, { POTLUCK_PORT: "eighty" })).toThrow(ConfigError);
    expect(() => parseConfig(Schema, { POTLUCK_PORT: "70000" })).toThrow(/POTLUCK_PORT="70000": expected a TCP port 1-65535/);
    expect(() => parseConfig(Schema, { POTLUCK_NATS_URL: "http://x" })).toThrow(/POTLUCK_NATS_URL.*nats:/);
    expect(() => parseConfig(Schema, { POTLUCK_PEER_MEMORY_ENABLED: "maybe" })).toThrow(/POTLUCK_PEER_MEMORY_ENABLED.*expected 0 or 1/);
  });
});
