import { runMeshAgent } from "./agent.js";
import { loadMeshConfig, meshUsage } from "./config.js";

function say(message: string): void {
  process.stdout.write(`potluck-mesh: ${message}\n`);
}

function fail(error: unknown): never {
  process.stderr.write(`potluck-mesh: ${error instanceof Error ? error.message : String(error)}\n`);
  // 2 for a command line the user can fix (ArgsError names the flag), as the potluck CLI does.
  process.exit(error instanceof Error && error.name === "ArgsError" ? 2 : 1);
}

const config = (() => {
  try {
    return loadMeshConfig(process.env, process.argv.slice(2));
  } catch (error) {
    return fail(error);
  }
})();
if (config.help) {
  process.stdout.write(`${meshUsage}\n`);
  process.exit(0);
}
const abort = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => abort.abort());
await runMeshAgent({ ...config, log: say, signal: abort.signal }).catch(fail);
