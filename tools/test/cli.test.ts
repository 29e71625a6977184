import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../src/lib/repo.js";
import { potluck, runBin } from "./helpers/bin.js";

// The real bins, as a user runs them: argument handling happens before any command does work,
// so none of these needs a running stack (a misspelt `up` flag must fail before `up` starts).
const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;

describe("potluck", () => {
  it("prints the version from package.json with --version and -V", async () => {
    for (const flag of ["--version", "-V"]) {
      const ran = await potluck(flag);
      expect(ran, flag).toMatchObject({ code: 0, stdout: `${version}\n` });
    }
  });

  it("refuses a misspelt flag, naming it, instead of using the default (exit 2)", async () => {
    const ran = await potluck("ask", "--max-token", "5", "hi");
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(/unknown flag --max-token \(did you mean --max-tokens\?\)/);
  });

  it("does not let an unknown boolean eat the prompt", async () => {
    const ran = await potluck("ask", "--json", "hi");
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(/unknown flag --json/);
  });

  it("has --help for every command", async () => {
    const overview = await potluck("--help");
    expect(overview.code).toBe(0);
    const names = [...overview.stdout.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1] as string);
    expect(names).toEqual(
      expect.arrayContaining([
        "up",
        "ask",
        "lab",
        "join",
        "ledger",
        "memory",
        "model",
        "doctor",
        "token",
        "peers",
        "mcp",
      ]),
    );
    // All at once: each is a fresh Node process, and one after another they outlast the timeout on a busy host.
    const helps = await Promise.all(names.map((name) => potluck(name, "--help")));
    names.forEach((name, i) => {
      expect(helps[i]?.code, name).toBe(0);
      expect(helps[i]?.stdout, name).toMatch(new RegExp(`^Usage:[\\s\\S]*potluck ${name}`));
    });
  });

  it("names a misspelt command or subcommand, its likely meaning and every choice (exit 2)", async () => {
    const cases = [
      [
        ["modles"],
        /unknown command "modles" \(did you mean models\?\); expected one of up, .*models.*; run potluck --help/,
      ],
      [["models", "lss"], /unknown models subcommand "lss" \(did you mean ls\?\); expected one of ls, ps, show/],
      [["memory", "serch", "x"], /unknown memory subcommand "serch" \(did you mean search\?\)/],
      [["ledger", "verfy"], /unknown ledger subcommand "verfy" \(did you mean verify\?\)/],
      [["lab", "stauts"], /unknown lab subcommand "stauts" \(did you mean status\?\)/],
      [["memory"], /memory subcommand missing; expected one of add, search/],
      [["zzz"], /^potluck: unknown command "zzz"; expected one of/],
    ] as const;
    const ran = await Promise.all(cases.map(([argv]) => potluck(...argv)));
    cases.forEach(([argv, pattern], i) => {
      expect(ran[i]?.code, argv.join(" ")).toBe(2);
      expect(ran[i]?.stderr, argv.join(" ")).toMatch(pattern);
    });
  });

  it("says which service does not answer, why, and how to start it", async () => {
    // A port that was just free on loopback (fetch refuses well-known ports such as 9 outright).
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const dead = `http://127.0.0.1:${port}`;
    const ran = await Promise.all([
      potluck("ask", "--url", dead, "hi"),
      potluck("models", "ls", "--url", dead),
      potluck("ledger", "grants", "--url", dead),
    ]);
    for (const [i, service] of ["sidecar", "sidecar", "ledger"].entries()) {
      expect(ran[i]?.code).toBe(1);
      expect(ran[i]?.stderr).toBe(
        `potluck: no ${service} answers at ${dead} (connect ECONNREFUSED 127.0.0.1:${port}); start it with potluck up\n`,
      );
    }
  });

  it("refuses a malformed POTLUCK_NATS_URL in up, naming it, before starting anything (exit 2)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "potluck-cli-up-"));
    try {
      for (const [url, why] of [
        ["http://hub:4222", "got a http:// URL"],
        ["nats://a:b:c", "Invalid URL"],
      ] as const) {
        const ran = await runBin("potluck.mjs", ["up"], undefined, {
          ...process.env,
          POTLUCK_DATA_DIR: dataDir,
          POTLUCK_NATS_URL: url,
        });
        expect(ran.code, url).toBe(2);
        expect(ran.stderr).toBe(
          `potluck: POTLUCK_NATS_URL: expected nats://[SECRET@]HOST:PORT, or several separated by commas (${why})\n`,
        );
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses a misspelt flag of up before starting anything", async () => {
    const ran = await potluck("up", "--no-fw-watch");
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(/unknown flag --no-fw-watch \(did you mean --no-fw-watcher\?\)/);
  });
});

describe("potluck-mesh", () => {
  it("has --help and refuses a misspelt flag", async () => {
    const help = await runBin("potluck-mesh.mjs", ["--help"]);
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toMatch(/^Usage: potluck-mesh/);
    const wrong = await runBin("potluck-mesh.mjs", ["--data-dri", "/tmp/x"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/unknown flag --data-dri \(did you mean --data-dir\?\)/);
  });
});
