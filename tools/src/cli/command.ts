import { ArgsError, parseFlags, type FlagSpec, type ParsedFlags } from "@potluck/service";

export type { FlagSpec, ParsedFlags };

/** One `potluck` subcommand. Each lives in its own file under commands/. */
export interface Command {
  name: string;
  /** One line for `potluck --help`. */
  summary: string;
  /** The full `potluck NAME --help` text. */
  usage: string;
  /**
   * Every flag the command takes (all of its subcommands'). main.ts parses argv with it strictly
   * before `run`, so a misspelt flag fails naming itself (exit 2) instead of a default applying.
   * Optional only while up.ts, owned by another change, still parses its own argv.
   */
  flags?: FlagSpec;
  /** Returns the process exit code. Throw `CliError` for a one-line failure on stderr. */
  run(argv: string[], parsed: ParsedFlags): Promise<number>;
}

/** A failure the user caused or can fix; printed as one line, exit code 1 unless given. */
export class CliError extends Error {
  override name = "CliError";
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** The one strict parser (@potluck/service), its errors as exit-code-2 CLI failures. */
export function parseCommandFlags(argv: readonly string[], spec: FlagSpec): ParsedFlags {
  try {
    return parseFlags(argv, spec);
  } catch (error) {
    if (error instanceof ArgsError) throw new CliError(error.message, 2);
    throw error;
  }
}

/**
 * @deprecated For up.ts only, until it declares `flags` and reads the `parsed` argument; then
 * delete this. main.ts has already refused unknown flags by then, so every other `--name` here is
 * a flag that takes a value.
 */
export function parseArgs(argv: readonly string[], booleans: readonly string[] = []): ParsedFlags {
  const end = argv.indexOf("--");
  const named = (end < 0 ? argv : argv.slice(0, end)).filter((arg) => arg.startsWith("--")).map((arg) => arg.slice(2).split("=")[0] ?? "");
  return parseCommandFlags(argv, { strings: [...new Set(named)].filter((name) => !booleans.includes(name)), booleans });
}
