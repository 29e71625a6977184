import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, found from this file's own location (tools/src/lib). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** Entry points of the services `potluck up` and the lab start, as `node` arguments. */
export const serviceEntry = {
  sidecar: join(repoRoot, "apps/sidecar/src/main.ts"),
  coordinator: join(repoRoot, "apps/coordinator/src/main.ts"),
  ledger: join(repoRoot, "apps/ledger/src/main.ts"),
  "fw-watcher": join(repoRoot, "apps/fw-watcher/src/main.ts"),
} as const;
export type ServiceName = keyof typeof serviceEntry;

/** `node` arguments that run a TypeScript entry point through tsx. */
export function tsNodeArgs(entry: string, args: readonly string[] = []): string[] {
  return ["--import", "tsx", entry, ...args];
}
