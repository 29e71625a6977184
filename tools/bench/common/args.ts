import { ArgsError, parseFlags, type FlagSpec, type ParsedFlags } from "@potluck/service";

/**
 * A bench's flags, parsed strictly by the one parser: a misspelt flag stops the bench naming it,
 * instead of a run of minutes measuring the default.
 */
export function benchFlags(argv: readonly string[], spec: FlagSpec): ParsedFlags {
  try {
    return parseFlags(argv, spec);
  } catch (error) {
    if (!(error instanceof ArgsError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}
