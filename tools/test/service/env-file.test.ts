import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseEnvFile, redactEnvFile, renderEnvFile } from "../../src/service/env-file.js";

const dir = mkdtempSync(join(tmpdir(), "potluck-envfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the one settings file", () => {
  it("node --env-file (how launchd and WinSW services read it) gets back exactly the values written", () => {
    const values = {
      POTLUCK_DATA_DIR: "/Users/ann/Library/Application Support/Potluck",
      POTLUCK_MODELS: "C:\\Users\\ann\\new models\\tiny.gguf",
      POTLUCK_NATS_URL: "nats://t0k#en@hub.lan:4222",
    };
    const file = join(dir, "potluck.env");
    const { POTLUCK_DATA_DIR, ...rest } = values;
    const text = renderEnvFile(POTLUCK_DATA_DIR, Object.entries(rest));
    writeFileSync(file, text);
    const seen = execFileSync(
      process.execPath,
      [
        `--env-file=${file}`,
        "-e",
        `process.stdout.write(JSON.stringify(${JSON.stringify(Object.keys(values))}.map((k) => process.env[k])))`,
      ],
      { encoding: "utf8", env: {} },
    );
    expect(JSON.parse(seen)).toEqual(Object.values(values));
    expect(parseEnvFile(text)).toEqual(values);
  });

  it("refuses a value it cannot write safely, naming the setting", () => {
    expect(() => renderEnvFile("/d", [["POTLUCK_X", "it's"]])).toThrow("POTLUCK_X: a value for the settings file");
  });

  it("redacts secrets for --dry-run", () => {
    expect(
      redactEnvFile(
        "POTLUCK_NATS_URL=nats://tok@h:4222\nPOTLUCK_COORDINATOR_ADMIN_SECRET=abc\nDATABASE_URL=postgres://u:pw@db/x",
      ),
    ).toBe(
      "POTLUCK_NATS_URL=nats://<redacted>@h:4222\nPOTLUCK_COORDINATOR_ADMIN_SECRET=<redacted>\nDATABASE_URL=postgres://<redacted>@db/x",
    );
  });
});
