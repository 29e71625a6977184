import { ArgsError, closestName, parseFlags, type FlagSpec, type ParsedFlags } from "@potluck/service";

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
   */
  flags: FlagSpec;
  /** Returns the process exit code. Throw `CliError` for a one-line failure on stderr. */
  run(argv: string[], parsed: ParsedFlags): Promise<number>;
}

/** A failure the user caused or can fix; printed as one line, exit code 1 unless given. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
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
 * The one failure for a word that is not one of a command's choices (a command, a subcommand):
 * names what was typed, the likely intended word, every choice and where help is; exit 2 like a
 * misspelt flag, so scripts tell a usage error from a failed operation.
 */
export function unknownChoice(what: string, typed: string | undefined, choices: readonly string[], help: string) {
  const hint = typed === undefined ? undefined : closestName(typed, choices);
  const got = typed === undefined ? `${what} missing` : `unknown ${what} "${typed}"`;
  return new CliError(
    `${got}${hint === undefined ? "" : ` (did you mean ${hint}?)`}; expected one of ${choices.join(", ")}; run ${help}`,
    2,
  );
}
