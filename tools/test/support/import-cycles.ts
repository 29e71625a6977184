import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

/** A group of files that reach one another through imports, with one cycle through them. */
export interface Cycle {
  /** The shortest cycle through the group's first file: repo-relative paths, the first repeated at the end. */
  path: string[];
  /** Every file of the group (a strongly connected component), sorted. */
  members: string[];
}

export interface CycleReport {
  cycles: Cycle[];
  /** Every file the search read, for a sanity check that it looked where it should. */
  filesRead: number;
}

/**
 * Finds import cycles among TypeScript files, type-only imports included: a type-only cycle still
 * ties two modules into one idea that cannot be read, tested or moved alone. Relative imports
 * (`./x.js`) resolve to their `.ts` file; `@potluck/<pkg>[/sub]` to the file the package's
 * `exports` names. Dynamic `import()` is not followed: it loads lazily and cannot form a load cycle.
 *
 * `roots`: folders under `repoRoot` whose `.ts` files start the search; a `*` segment matches
 * every folder at that level (`apps/*\/src`). Files they import are followed wherever they are.
 */
export function findImportCycles(repoRoot: string, roots: readonly string[]): CycleReport {
  const packages = workspacePackages(repoRoot);
  const edges = new Map<string, string[]>();
  const pending = roots.flatMap((root) => expand(repoRoot, root)).flatMap((dir) => tsFiles(dir));
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (edges.has(file)) continue;
    const targets = importsOf(file)
      .map((specifier) => resolveImport(file, specifier, packages))
      .filter((target): target is string => target !== undefined);
    edges.set(file, targets);
    pending.push(...targets.filter((target) => !edges.has(target)));
  }
  const cycles = stronglyConnected(edges)
    .filter((group) => group.length > 1 || (edges.get(group[0] as string) ?? []).includes(group[0] as string))
    .map((group) => ({
      path: cycleWithin(group, edges).map((file) => relative(repoRoot, file)),
      members: group.map((file) => relative(repoRoot, file)),
    }));
  return { cycles, filesRead: edges.size };
}

/** The module specifiers of a file's static imports and re-exports, `import type` and `export type` included. */
function importsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const specifiers: string[] = [];
  for (const statement of source.statements) {
    const specifier =
      ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement) ? statement.moduleSpecifier : undefined;
    if (specifier !== undefined && ts.isStringLiteral(specifier)) specifiers.push(specifier.text);
  }
  return specifiers;
}

function resolveImport(
  from: string,
  specifier: string,
  packages: ReadonlyMap<string, WorkspacePackage>,
): string | undefined {
  if (specifier.startsWith(".")) return tsFile(resolve(dirname(from), specifier));
  const match = /^(@potluck\/[^/]+)(\/.*)?$/.exec(specifier);
  const pkg = match === null ? undefined : packages.get(match[1] as string);
  if (pkg === undefined) return undefined;
  const subpath = `.${match?.[2] ?? ""}`;
  const exported = pkg.exports[subpath];
  return tsFile(join(pkg.dir, exported ?? subpath));
}

/** `x.js`, `x.ts` or `x` (a folder with `index.ts`) as the `.ts` file it names, if there is one. */
function tsFile(path: string): string | undefined {
  const stem = path.replace(/\.(js|ts)$/, "");
  for (const candidate of [`${stem}.ts`, join(stem, "index.ts")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

interface WorkspacePackage {
  dir: string;
  /** Subpath (`.`, `./proof`) to the file it exports. */
  exports: Record<string, string>;
}

/** Every `@potluck/*` package of the workspace (apps/*, libs/*, tools), by name. */
function workspacePackages(repoRoot: string): Map<string, WorkspacePackage> {
  const packages = new Map<string, WorkspacePackage>();
  for (const dir of [...expand(repoRoot, "apps/*"), ...expand(repoRoot, "libs/*"), join(repoRoot, "tools")]) {
    const manifest = join(dir, "package.json");
    if (!existsSync(manifest)) continue;
    const { name, exports } = JSON.parse(readFileSync(manifest, "utf8")) as {
      name?: string;
      exports?: string | Record<string, string>;
    };
    if (name === undefined) continue;
    packages.set(name, { dir, exports: typeof exports === "string" ? { ".": exports } : (exports ?? {}) });
  }
  return packages;
}

/** A root with `*` segments as the folders it matches. */
function expand(repoRoot: string, root: string): string[] {
  let dirs = [repoRoot];
  for (const segment of root.split("/")) {
    dirs = dirs
      .flatMap((dir) => (segment === "*" ? subdirs(dir) : [join(dir, segment)]))
      .filter((dir) => existsSync(dir) && statSync(dir).isDirectory());
  }
  return dirs;
}

function subdirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(dir, e.name));
}

/** Every `.ts` file under `dir` (declaration files and node_modules aside). */
function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts"))
    .map((e) => join(e.parentPath, e.name))
    .filter((file) => !file.includes("/node_modules/"));
}

/** Tarjan's algorithm, iterative so a deep import chain cannot overflow the stack. */
function stronglyConnected(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const groups: string[][] = [];
  let next = 0;
  for (const start of [...edges.keys()].sort()) {
    if (index.has(start)) continue;
    const frames: { node: string; child: number }[] = [{ node: start, child: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (frames.length > 0) {
      const frame = frames.at(-1) as { node: string; child: number };
      const children = edges.get(frame.node) ?? [];
      if (frame.child < children.length) {
        const child = children[frame.child++] as string;
        if (!index.has(child)) {
          index.set(child, next);
          low.set(child, next++);
          stack.push(child);
          onStack.add(child);
          frames.push({ node: child, child: 0 });
        } else if (onStack.has(child)) {
          low.set(frame.node, Math.min(low.get(frame.node) as number, index.get(child) as number));
        }
        continue;
      }
      frames.pop();
      const parent = frames.at(-1);
      if (parent !== undefined)
        low.set(parent.node, Math.min(low.get(parent.node) as number, low.get(frame.node) as number));
      if (low.get(frame.node) === index.get(frame.node)) {
        const group: string[] = [];
        let member: string;
        do {
          member = stack.pop() as string;
          onStack.delete(member);
          group.push(member);
        } while (member !== frame.node);
        groups.push(group.sort());
      }
    }
  }
  return groups;
}

/** One concrete cycle through a group's first file, by a breadth-first search inside the group (the shortest). */
function cycleWithin(group: readonly string[], edges: ReadonlyMap<string, readonly string[]>): string[] {
  const members = new Set(group);
  const start = group[0] as string;
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift() as string;
    for (const child of edges.get(node) ?? []) {
      if (!members.has(child)) continue;
      if (child === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0] as string) as string);
        return [...path, start];
      }
      if (!cameFrom.has(child)) {
        cameFrom.set(child, node);
        queue.push(child);
      }
    }
  }
  return [...group];
}
