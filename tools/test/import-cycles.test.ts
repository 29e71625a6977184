import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../src/lib/repo.js";
import { findImportCycles } from "./support/import-cycles.js";

/** Where production code lives: every file here, and everything it imports, must be free of cycles. */
const sourceRoots = ["apps/*/src", "libs/*/src", "tools/src", "tools/bench"];

describe("import cycles", () => {
  it("none in the repo's source, type-only imports included", () => {
    const { cycles, filesRead } = findImportCycles(repoRoot, sourceRoots);
    // A search that read nothing would pass vacuously.
    expect(filesRead).toBeGreaterThan(100);
    expect(
      cycles.map((cycle) => cycle.path.join(" → ")),
      "import cycles: move the shared types into their own module",
    ).toEqual([]);
  });

  describe("the cycle finder, on a fixture repo", () => {
    const root = mkdtempSync(join(tmpdir(), "potluck-import-cycles-"));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    write(
      "libs/a/package.json",
      JSON.stringify({ name: "@potluck/a", exports: { ".": "./src/index.ts", "./extra": "./src/extra.ts" } }),
    );
    write("libs/b/package.json", JSON.stringify({ name: "@potluck/b", exports: { ".": "./src/index.ts" } }));
    // A type-only cycle between two files of one package.
    write("libs/a/src/one.ts", 'import type { Two } from "./two.js";\nexport type One = { two?: Two };\n');
    write("libs/a/src/two.ts", 'import { type One } from "./one.js";\nexport type Two = { one?: One };\n');
    // A cycle across packages, through a subpath export and a re-export.
    write("libs/a/src/index.ts", 'export { b } from "@potluck/b";\n');
    write("libs/a/src/extra.ts", 'export const extra = 1;\nexport type { Two } from "./two.js";\n');
    write(
      "libs/b/src/index.ts",
      'import { extra } from "@potluck/a/extra";\nimport type { X } from "./dir";\nexport const b = extra;\nexport type B = X;\n',
    );
    write("libs/b/src/dir/index.ts", 'import type { B } from "../index.js";\nexport type X = B | number;\n');
    // No cycle: an import of a package outside the workspace, and a dynamic import back.
    write(
      "libs/b/src/lazy.ts",
      'import { readFileSync } from "node:fs";\nexport const load = () => import("./late.js");\nexport const read = readFileSync;\n',
    );
    write("libs/b/src/late.ts", 'import { load } from "./lazy.js";\nexport const again = load;\n');

    it("reports each cycle as a path list, type-only imports, index files and packages resolved", () => {
      const { cycles } = findImportCycles(root, ["libs/*/src"]);
      expect(cycles.map((cycle) => cycle.path).sort()).toEqual([
        ["libs/a/src/one.ts", "libs/a/src/two.ts", "libs/a/src/one.ts"],
        ["libs/b/src/dir/index.ts", "libs/b/src/index.ts", "libs/b/src/dir/index.ts"],
      ]);
      expect(cycles.find((cycle) => cycle.members.includes("libs/b/src/index.ts"))?.members).toEqual([
        "libs/b/src/dir/index.ts",
        "libs/b/src/index.ts",
      ]);
    });

    it("finds a cycle through a package's exported entry", () => {
      write(
        "libs/a/src/extra.ts",
        'import { b } from "@potluck/b";\nexport const extra = 1;\nexport const viaB = b;\n',
      );
      const { cycles } = findImportCycles(root, ["libs/b/src"]);
      const crossing = cycles.find((cycle) => cycle.members.includes("libs/a/src/extra.ts"));
      expect(crossing?.path).toEqual(["libs/a/src/extra.ts", "libs/b/src/index.ts", "libs/a/src/extra.ts"]);
    });
  });
});
