import { basename } from "node:path";
import { defineConfig } from "vitest/config";

/** Every project's test settings; `dir` is the project's folder, which names its JSON report. */
export function projectTestConfig(dir: string): ReturnType<typeof defineConfig> {
  return defineConfig({
    test: {
      include: ["src/**/*.test.ts", "test/**/*.test.ts"],
      // Real servers and namespaces take a moment; no test may fail on timing alone.
      testTimeout: 60_000,
      hookTimeout: 120_000,
      // The JSON report feeds the one-line total that `npm test` prints at the end.
      reporters: ["default", "json"],
      outputFile: { json: `${import.meta.dirname}/.test-results/${basename(dir)}.json` },
    },
  });
}
