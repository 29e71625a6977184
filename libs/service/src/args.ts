import { parseArgs } from "node:util";

/**
 * The one argument parser for the `potluck` CLI and every service's flags: `node:util` parseArgs
 * in strict mode, so a misspelt flag (`--max-token 5`) is an error that names it instead of being
 * ignored while a default silently applies.
 */
export interface FlagSpec {
  /** Flags that take a value: `--name value` or `--name=value`. */
  strings?: readonly string[];
  /** Flags that take none: `--json`. */
  booleans?: readonly string[];
  /** Whether bare words are allowed (a prompt, a machine name). */
  positionals?: boolean;
}

export interface ParsedFlags {
  /** Every flag given, by name; booleans are "true". The last of a repeated flag wins. */
  flags: Map<string, string>;
  positionals: string[];
}

/** A command line the user can fix; the message names the flag and what it expects. */
export class ArgsError extends Error {
  override name = "ArgsError";
  constructor(
    message: string,
    readonly flag?: string,
  ) {
    super(message);
  }
}

export function parseFlags(argv: readonly string[], spec: FlagSpec): ParsedFlags {
  const { strings = [], booleans = [], positionals = true } = spec;
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const name of strings) options[name] = { type: "string" };
  for (const name of booleans) options[name] = { type: "boolean" };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: positionals });
  } catch (error) {
    throw toArgsError(error, [...strings, ...booleans]);
  }
  const flags = new Map<string, string>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value === undefined) continue;
    flags.set(name, String(value));
  }
  return { flags, positionals: parsed.positionals };
}

/** parseArgs' own messages mention `-x` short forms and internals; ours name the flag and the fix. */
function toArgsError(error: unknown, known: readonly string[]): ArgsError {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  // The flag as typed (`--max-token`, `-4`): no short forms are declared, so a single dash is shown as given.
  const typed = /'(--?[^'\s]+)/.exec(message)?.[1]?.split("=")[0];
  const flag = typed?.replace(/^-+/, "");
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const long = typed?.startsWith("--") === true;
      const hint = flag === undefined || !long ? undefined : closestName(flag, known);
      const list =
        known.length === 0 ? "this command takes no flags" : `known flags: ${known.map((k) => `--${k}`).join(", ")}`;
      const dash = long ? "" : "; a word that starts with - goes after --";
      return new ArgsError(
        `unknown flag ${typed ?? "?"}${hint === undefined ? "" : ` (did you mean --${hint}?)`}; ${list}${dash}`,
        flag,
      );
    }
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return new ArgsError(
        flag === undefined
          ? message
          : `--${flag} ${message.includes("argument missing") ? "needs a value" : "takes no value"}`,
        flag,
      );
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new ArgsError(
        `unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ""}: this command takes only flags`.trim(),
      );
    default:
      return new ArgsError(message, flag);
  }
}

/**
 * The known name (a flag, a command) a misspelt one most likely meant, for a "did you mean" hint:
 * within one edit (two for longer names), where swapping two neighbouring letters counts as one
 * edit. Short names get the tighter bound so `--json` is not "corrected" to an unrelated `--on`.
 */
export function closestName(typed: string, known: readonly string[]): string | undefined {
  const distanceMax = typed.length >= 6 ? 2 : 1;
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(typed, name);
    if (distance <= distanceMax && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Optimal string alignment distance; flags are short (under ~30 characters), so the table is small. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => rows[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        distance = Math.min(distance, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = distance;
    }
  }
  return at(a.length, b.length);
}
