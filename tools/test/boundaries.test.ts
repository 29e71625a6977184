import { join } from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../src/lib/repo.js";

// The boundary rules live in eslint.config.mjs and run in `npm test`; these tests prove they
// bite, by linting deliberate violations as if they were files in the repo (nothing is written).
const eslint = new ESLint({ cwd: repoRoot });

async function errorsFor(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(repoRoot, path) });
  return (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => `${m.ruleId}: ${m.message}`);
}

describe("module boundaries", () => {
  it("refuse an import from one app into another by path", async () => {
    const errors = await errorsFor(
      "apps/ledger/src/leak.ts",
      'import { buildSidecarApp } from "../../sidecar/src/app.js";\nexport const x = buildSidecarApp;\n',
    );
    expect(errors.join("\n")).toMatch(/@nx\/enforce-module-boundaries/);
  });

  it("refuse an import from one app into another by package name", async () => {
    for (const module of ["@potluck/ledger", "@potluck/sidecar/src/app.js"]) {
      const errors = await errorsFor(
        "apps/coordinator/src/leak.ts",
        `import { x } from "${module}";\nexport const y = x;\n`,
      );
      expect(errors.join("\n"), module).toMatch(/never import an app/);
    }
  });

  it("refuse a framework import in libs/protocol", async () => {
    for (const module of ["hono", "drizzle-orm", "node-llama-cpp", "@nats-io/transport-node"]) {
      const errors = await errorsFor(
        "libs/protocol/src/leak.ts",
        `import * as m from "${module}";\nexport const x = m;\n`,
      );
      expect(errors.join("\n"), module).toMatch(/libs\/protocol imports no framework/);
    }
  });

  it("refuse a lib importing an @potluck package above it in the lib layers", async () => {
    for (const [path, module, rule] of [
      ["libs/protocol/src/leak.ts", "@potluck/peer", /libs\/protocol imports no other @potluck package/],
      ["libs/gguf/src/leak.ts", "@potluck/service", /libs\/gguf imports only @potluck\/protocol/],
      ["libs/service/src/leak.ts", "@potluck/peer", /libs\/service imports only @potluck\/protocol/],
      [
        "libs/peer/src/leak.ts",
        "@potluck/diagnostics",
        /libs\/peer imports only @potluck\/protocol and @potluck\/service/,
      ],
    ] as const) {
      const errors = await errorsFor(path, `import type { X } from "${module}";\nexport type Y = X;\n`);
      expect(errors.join("\n"), `${path}: ${module}`).toMatch(rule);
    }
  });

  it("allow a lib to import the libs below it", async () => {
    for (const [path, module] of [
      ["libs/diagnostics/src/ok.ts", "@potluck/peer"],
      ["libs/peer/src/ok.ts", "@potluck/service"],
      ["libs/ledger-proof/src/ok.ts", "@potluck/protocol"],
    ] as const) {
      expect(
        await errorsFor(path, `import { x } from "${module}";\nexport const y = x;\n`),
        `${path}: ${module}`,
      ).toEqual([]);
    }
  });

  it("refuse a tool's import of an app's or lib's internals", async () => {
    for (const module of [
      "@potluck/ledger/src/ledger/service.js",
      "@potluck/ledger/internal",
      "@potluck/ledger/cli",
      "../../../apps/sidecar/src/app.js",
      "../../../libs/protocol/src/index.js",
    ]) {
      const errors = await errorsFor(
        "tools/src/cli/commands/leak.ts",
        `import { x } from "${module}";\nexport const y = x;\n`,
      );
      expect(errors.join("\n"), module).toMatch(/tools import (only a package's public index|a package by its name)/);
    }
  });

  it("refuse lab internals outside tools/src/lab, and allow its index", async () => {
    for (const [path, module] of [
      ["tools/src/cli/commands/leak.ts", "../../lab/run.js"],
      ["tools/bench/inference/leak.ts", "../../src/lab/state.js"],
      ["tools/test/leak.test.ts", "../src/lab/hub.js"],
    ] as const) {
      const errors = await errorsFor(path, `import { x } from "${module}";\nexport const y = x;\n`);
      expect(errors.join("\n"), `${path} -> ${module}`).toMatch(/import the lab only through lab\/index\.js/);
    }
    expect(
      await errorsFor(
        "tools/bench/inference/ok.ts",
        'import { pollUntil } from "../../src/lab/index.js";\nexport const x = pollUntil;\n',
      ),
    ).toEqual([]);
    expect(
      await errorsFor("tools/src/lab/ok.ts", 'import { pollUntil } from "./run.js";\nexport const x = pollUntil;\n'),
    ).toEqual([]);
  });

  it("allow a tool to import a package's public index", async () => {
    const errors = await errorsFor(
      "tools/src/cli/commands/ok.ts",
      'import { joinMesh } from "@potluck/mesh";\nimport { verifyProofBundle } from "@potluck/ledger-proof";\nexport const x = [joinMesh, verifyProofBundle];\n',
    );
    expect(errors).toEqual([]);
  });

  it("allow an app to import a lib", async () => {
    const errors = await errorsFor(
      "apps/ledger/src/ok.ts",
      'import { Subjects } from "@potluck/protocol";\nexport const x = Subjects;\n',
    );
    expect(errors).toEqual([]);
  });
});
