// `npm test`: the module-boundary lint, the type check and every project's tests, through Nx.
// Lint runs first so that a forbidden import fails fast, before minutes of integration tests.
import { spawnSync } from "node:child_process";

const env = { ...process.env, NX_DAEMON: "false", NX_NO_CLOUD: "true", NX_TUI: "false" };
const steps = [
  ["nx", "run-many", "-t", "lint", "--outputStyle=static"],
  ["nx", "run-many", "-t", "typecheck", "--outputStyle=static"],
  // One project at a time: integration suites share this 2-core machine's namespaces, Postgres
  // and NATS, and run faster in sequence than fighting for the cores.
  ["nx", "run-many", "-t", "test", "--parallel=1", "--outputStyle=static", "--skip-nx-cache"],
];
for (const args of steps) {
  const result = spawnSync("npx", args, { stdio: "inherit", env });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
