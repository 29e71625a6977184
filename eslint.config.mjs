// ESLint runs here for one reason above all: to enforce module boundaries, so that
// "apps never import apps" and "protocol imports no framework" fail `npm test` instead of
// living only in a document.
import nx from "@nx/eslint-plugin";
import tseslint from "typescript-eslint";

// Frameworks, ORMs, clients and model runtimes that libs/protocol must never import: it is the
// wire contract every app and the CLI share, and must stay loadable anywhere.
const frameworkImports = [
  "hono",
  "hono/*",
  "@hono/*",
  "drizzle-orm",
  "drizzle-orm/*",
  "postgres",
  "@electric-sql/*",
  "node-llama-cpp",
  "@nats-io/*",
  "nats",
  "pino",
  "prom-client",
  "usearch",
];

const appPackages = [
  "@potluck/sidecar",
  "@potluck/coordinator",
  "@potluck/ledger",
  "@potluck/fw-watcher",
  "@potluck/mesh",
  "@potluck/tools",
  "@potluck/*/src/*",
];
const appBan = { group: appPackages, message: "apps and libs never import an app; move shared code to a lib." };

// The libs form layers with protocol at the bottom: each may import only the @potluck packages
// below it, so a change to a lib never reaches down into the wire contract and no two libs can
// import each other. Nx's tags cannot say this (every lib is `type:lib`, `scope:shared`).
const libImportsAllowed = {
  protocol: [],
  gguf: ["protocol"],
  "ledger-proof": ["protocol"],
  service: ["protocol"],
  peer: ["protocol", "service"],
  diagnostics: ["protocol", "service", "peer"],
};
const libLayerBan = (lib) => {
  const allowed = libImportsAllowed[lib];
  const may =
    allowed.length === 0
      ? "no other @potluck package"
      : `only ${allowed.map((name) => `@potluck/${name}`).join(" and ")}`;
  return {
    group: ["@potluck/*", ...allowed.map((name) => `!@potluck/${name}`)],
    message: `libs/${lib} imports ${may} (the lib layers in eslint.config.mjs).`,
  };
};

export default [
  { ignores: ["**/node_modules/**", "**/dist/**", "**/drizzle/**", "**/*.config.ts", "**/.nx/**"] },
  { ...tseslint.configs.base, files: ["**/*.ts"] },
  {
    // Prettier wraps code at 120 columns but leaves long strings and comments alone: comments are
    // held to the same width here; a message or a SQL text stays whole so it can be searched for.
    files: ["**/*.ts"],
    rules: {
      "max-len": [
        "error",
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
    },
  },
  {
    files: ["**/*.ts"],
    plugins: { "@nx": nx },
    rules: {
      "@nx/enforce-module-boundaries": [
        "error",
        {
          enforceBuildableLibDependency: false,
          // Nx refuses any import of an application project whatever the tags say; tools (benches,
          // the CLI's offline verifiers, tests) may drive apps, so those imports are allowed here and
          // "apps never import apps" is enforced by the name-based ban below instead.
          allow: [
            "@potluck/sidecar",
            "@potluck/sidecar/**",
            "@potluck/coordinator",
            "@potluck/coordinator/**",
            "@potluck/ledger",
            "@potluck/ledger/**",
            "@potluck/fw-watcher",
            "@potluck/fw-watcher/**",
            "@potluck/mesh",
            "@potluck/mesh/**",
          ],
          depConstraints: [
            { sourceTag: "type:app", onlyDependOnLibsWithTags: ["type:lib"] },
            { sourceTag: "type:lib", onlyDependOnLibsWithTags: ["type:lib"] },
            // Tools (CLI, lab, benches) may drive apps in-process for benchmarks.
            { sourceTag: "type:tool", onlyDependOnLibsWithTags: ["type:lib", "type:app"] },
            { sourceTag: "scope:sidecar", onlyDependOnLibsWithTags: ["scope:shared"] },
            { sourceTag: "scope:coordinator", onlyDependOnLibsWithTags: ["scope:shared"] },
            { sourceTag: "scope:ledger", onlyDependOnLibsWithTags: ["scope:shared"] },
            { sourceTag: "scope:fw-watcher", onlyDependOnLibsWithTags: ["scope:shared"] },
            { sourceTag: "scope:mesh", onlyDependOnLibsWithTags: ["scope:shared"] },
            { sourceTag: "scope:shared", onlyDependOnLibsWithTags: ["scope:shared"] },
          ],
        },
      ],
    },
  },
  {
    // Belt and braces for "apps never import apps": Nx maps imports to projects through its graph,
    // which only knows packages that resolve; a name-based ban needs no graph at all.
    files: ["apps/**/*.ts", "libs/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [{ group: appPackages, message: "apps and libs never import an app; move shared code to a lib." }],
        },
      ],
    },
  },
  // One block per lib, replacing the ban above for its files (ESLint replaces a rule's options, never merges them).
  ...Object.keys(libImportsAllowed).map((lib) => ({
    files: [`libs/${lib}/**/*.ts`],
    rules: { "no-restricted-imports": ["error", { patterns: [appBan, libLayerBan(lib)] }] },
  })),
  {
    // Tools (the CLI, benches, the demo, tests) use only what a package or the lab chose to publish:
    // a package's main entry or a declared index (e.g. @potluck/sidecar/memory), and the lab's
    // index.ts. Reaching past them ties a tool to an app's internals, which then cannot move.
    files: ["tools/**/*.ts"],
    ignores: ["tools/src/lab/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^@potluck/[^/]+/(src|internal|cli)(/|$)",
              message: "tools import only a package's public index, not its internals.",
            },
            {
              regex: "^(\\.\\./)+(apps|libs)/",
              message: "tools import a package by its name (@potluck/…), never by a path into apps/ or libs/.",
            },
            {
              regex: "^(\\.\\./)+(src/)?lab/(?!index\\.js$)",
              message: "outside tools/src/lab, import the lab only through lab/index.js.",
            },
          ],
        },
      ],
    },
  },
  {
    // Source only: protocol's own tests may use hono to prove the validator works in it.
    files: ["libs/protocol/src/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...frameworkImports.map((group) => ({
              group: [group],
              message: "libs/protocol imports no framework, ORM, client or model runtime.",
            })),
            appBan,
            libLayerBan("protocol"),
          ],
        },
      ],
    },
  },
];
