/** What installing or removing services does, as data: --dry-run prints it, install runs it. */
export type Step =
  | { kind: "mkdir"; path: string; mode: number }
  | { kind: "file"; path: string; content: string; mode: number; keepIfExists?: boolean; secret?: "env" | "whole" }
  | { kind: "copy"; from: string; to: string }
  | { kind: "remove"; path: string }
  | { kind: "run"; argv: string[]; mayFail?: boolean };

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The one door to the machine; tests inject a recording fake, so every OS's path runs on Linux. */
export interface SystemOps {
  run(argv: readonly string[]): Promise<RunResult>;
  exists(path: string): boolean;
  mkdir(path: string, mode: number): void;
  writeFile(path: string, content: string, mode: number): void;
  copyFile(from: string, to: string): void;
  remove(path: string): void;
}
