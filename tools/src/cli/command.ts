/** One `potluck` subcommand. Each lives in its own file under commands/. */
export interface Command {
  name: string;
  /** One line for `potluck --help`. */
  summary: string;
  /** The full `potluck NAME --help` text. */
  usage: string;
  /** Returns the process exit code. Throw `CliError` for a one-line failure on stderr. */
  run(argv: string[]): Promise<number>;
}

/** A failure the user caused or can fix; printed as one line, exit code 1 unless given. */
export class CliError extends Error {
  override name = "CliError";
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** Minimal flag parsing shared by every subcommand: --flag value, --flag=value, --bool. */
export function parseArgs(argv: readonly string[], booleans: readonly string[] = []): { flags: Map<string, string>; positionals: string[] } {
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (eq > 0) flags.set(name, arg.slice(eq + 1));
    else if (booleans.includes(name)) flags.set(name, "true");
    else {
      const value = argv[i + 1];
      if (value === undefined) throw new CliError(`--${name} needs a value`, 2);
      flags.set(name, value);
      i++;
    }
  }
  return { flags, positionals };
}
