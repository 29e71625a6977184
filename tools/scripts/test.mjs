// `npm test`: the format check, the module-boundary lint, the type check and every project's tests, through Nx,
// then one closing line with the totals over every project.
// Lint runs first so that a forbidden import fails fast, before minutes of integration tests.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const resultsDir = join(import.meta.dirname, "..", "..", ".test-results");
rmSync(resultsDir, { recursive: true, force: true });

const env = { ...process.env, NX_DAEMON: "false", NX_NO_CLOUD: "true", NX_TUI: "false" };
const steps = [
  // One format for every file (Prettier, 120 columns; .prettierrc.json): a diff of layout alone
  // never reaches review, and the check takes seconds.
  ["prettier", "--check", "--log-level=warn", "."],
  ["nx", "run-many", "-t", "lint", "--outputStyle=static"],
  ["nx", "run-many", "-t", "typecheck", "--outputStyle=static"],
  // One project at a time: integration suites share this 2-core machine's namespaces, Postgres
  // and NATS, and run faster in sequence than fighting for the cores.
  ["nx", "run-many", "-t", "test", "--parallel=1", "--outputStyle=static", "--skip-nx-cache"],
];
let status = 0;
for (const args of steps) {
  const result = spawnSync("npx", args, { stdio: "inherit", env });
  if (result.status !== 0) {
    status = result.status ?? 1;
    break;
  }
}
printTotals();
process.exit(status);

function printTotals() {
  if (!existsSync(resultsDir)) return;
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const file of readdirSync(resultsDir).filter((f) => f.endsWith(".json"))) {
    const report = JSON.parse(readFileSync(join(resultsDir, file), "utf8"));
    passed += report.numPassedTests ?? 0;
    failed += report.numFailedTests ?? 0;
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  }
  process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
}
