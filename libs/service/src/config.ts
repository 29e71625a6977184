import { natsServersMax } from "@potluck/protocol";
import { z } from "zod";
import { ArgsError, parseFlags } from "./args.js";

/** Flags a service's command line takes besides its configuration (modes, `--json`). */
export interface ConfigFlagOptions {
  /** Switches the caller reads itself; parseConfig accepts and ignores them. */
  booleans?: readonly string[];
}

/**
 * Parses an app's configuration once at start-up. The schema is keyed by environment variable
 * (`POTLUCK_PORT`); a command-line flag of the same name (`--port`, `--port=8321`) overrides the
 * variable. A bad value throws `ConfigError` naming the variable and what it expects, so main.ts
 * can stop with one clear line instead of limping on with a default. An unknown flag is a
 * `ConfigError` naming it, never ignored while a default silently applies. `--help` throws
 * `ConfigHelp`, whose message lists every flag and variable.
 */
export function parseConfig<S extends z.ZodObject>(
  schema: S,
  env: Record<string, string | undefined>,
  argv: readonly string[] = [],
  options: ConfigFlagOptions = {},
): z.infer<S> {
  const variables = Object.keys(schema.shape);
  const input: Record<string, string | undefined> = {};
  for (const name of variables) input[name] = env[name];
  const flags = readFlags(variables, argv, options);
  if (flags.has("help")) throw new ConfigHelp(variables);
  for (const name of variables) {
    const flag = flagNameFor(name);
    if (flags.has(flag)) input[name] = flags.get(flag);
  }
  // Empty variables count as unset, as shells often export `FOO=` meaning "no value".
  for (const [name, value] of Object.entries(input)) if (value === "") input[name] = undefined;
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const variable = issue?.path[0] === undefined ? "configuration" : String(issue.path[0]);
  const shown = input[variable];
  throw new ConfigError(
    variable,
    `${variable}${shown === undefined ? "" : `=${JSON.stringify(shown)}`}: ${issue?.message ?? "invalid value"} (or --${flagNameFor(variable)})`,
  );
}

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

/** `--help` was asked for: not an error, but it ends start-up the same way, with its text. */
export class ConfigHelp extends ConfigError {
  override name = "ConfigHelp";
  constructor(variables: readonly string[]) {
    super(
      "help",
      `flags (each overrides the variable of the same name):\n${variables.map((v) => `  --${flagNameFor(v)}  (${v})`).join("\n")}`,
    );
  }
}

/** POTLUCK_FW_WATCH_INTERVAL -> fw-watch-interval; DATABASE_URL -> database-url. */
export function flagNameFor(variable: string): string {
  return variable
    .replace(/^POTLUCK_/, "")
    .toLowerCase()
    .replaceAll("_", "-");
}

/**
 * Every configuration flag takes a value; a bare `--ingest` (next word missing or another flag)
 * means "true", as it always has, so on/off settings read naturally on a command line.
 */
function readFlags(
  variables: readonly string[],
  argv: readonly string[],
  options: ConfigFlagOptions,
): Map<string, string> {
  const strings = variables.map(flagNameFor);
  const booleans = [...(options.booleans ?? []), "help"];
  const valued = new Set(strings);
  const args = argv.map((arg, i) => {
    const next = argv[i + 1];
    const bare = arg.startsWith("--") && !arg.includes("=") && valued.has(arg.slice(2));
    return bare && (next === undefined || next.startsWith("--")) ? `${arg}=true` : arg;
  });
  try {
    return parseFlags(args, { strings, booleans, positionals: false }).flags;
  } catch (error) {
    if (error instanceof ArgsError)
      throw new ConfigError(error.flag === undefined ? "arguments" : `--${error.flag}`, error.message);
    throw error;
  }
}

/** Shared field parsers for configuration schemas. */
export const ConfigFields = {
  port: (fallback: number) =>
    z.coerce
      .number()
      .int("expected a TCP port number")
      .min(1, "expected a TCP port 1-65535")
      .max(65535, "expected a TCP port 1-65535")
      .default(fallback),
  flag: (fallback: boolean) =>
    z
      .enum(["0", "1", "true", "false", "yes", "no"], "expected 0 or 1")
      .default(fallback ? "1" : "0")
      .transform((v) => v === "1" || v === "true" || v === "yes"),
  /** A list of them comma-separated where `protocols` names nats: (a cluster's servers). */
  url: (protocols: readonly string[]) =>
    protocols.includes("nats") ? urlList(protocols, natsServersMax) : oneUrl(protocols),
  /** One URL of `protocols`, or up to `max` of them comma-separated (several processes of one service). */
  urlList: (protocols: readonly string[], max: number) => urlList(protocols, max),
} as const;

function oneUrl(protocols: readonly string[]) {
  return z
    .url(`expected a URL (${protocols.join(", ")})`)
    .refine(
      (u) => protocols.some((p) => u.startsWith(`${p}:`)),
      `expected a URL starting with ${protocols.map((p) => `${p}:`).join(" or ")}`,
    );
}

/**
 * A URL, or several comma-separated (a NATS cluster's servers `nats://a:4222,nats://b:4222`, a
 * hub's coordinators): every entry must be a URL of one of `protocols`, at most `max` of them.
 * The value stays the string; `splitUrlList` (and, for NATS, natsClusterConnectOptions) reads it.
 */
function urlList(protocols: readonly string[], max: number) {
  const entry = z.url();
  return z.string().refine(
    (list) => {
      const entries = splitUrlList(list);
      return (
        entries.length <= max &&
        entries.every((e) => entry.safeParse(e).success && protocols.some((p) => e.startsWith(`${p}:`)))
      );
    },
    `expected a URL starting with ${protocols.map((p) => `${p}:`).join(" or ")}, or up to ${max} of them comma-separated`,
  );
}

/** The trimmed entries of a comma-separated URL list; one URL is a list of one. */
export function splitUrlList(list: string): string[] {
  return list.split(",").map((e) => e.trim());
}

/**
 * Loads configuration for a service's main.ts: a bad value prints one line and exits 2; `--help` prints the flags and
 * exits 0.
 */
export function loadConfigOrExit<T>(service: string, load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigHelp) {
      process.stdout.write(`Usage: ${service} [flags]\n${error.message}\n`);
      process.exit(0);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`${service}: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}
