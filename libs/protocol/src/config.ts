import { z } from "zod";

/**
 * Parses an app's configuration once at start-up. The schema is keyed by environment variable
 * (`POTLUCK_PORT`); a command-line flag of the same name (`--port`, `--port=8321`) overrides the
 * variable. A bad value throws `ConfigError` naming the variable and what it expects, so main.ts
 * can stop with one clear line instead of limping on with a default.
 */
export function parseConfig<S extends z.ZodObject>(
  schema: S,
  env: Record<string, string | undefined>,
  argv: readonly string[] = [],
): z.infer<S> {
  const input: Record<string, string | undefined> = {};
  for (const name of Object.keys(schema.shape)) input[name] = env[name];
  const flags = parseFlags(argv);
  for (const name of Object.keys(schema.shape)) {
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
  throw new ConfigError(variable, `${variable}${shown === undefined ? "" : `=${JSON.stringify(shown)}`}: ${issue?.message ?? "invalid value"} (or --${flagNameFor(variable)})`);
}

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly variable: string, message: string) {
    super(message);
  }
}

/** POTLUCK_FW_WATCH_INTERVAL -> fw-watch-interval; DATABASE_URL -> database-url. */
export function flagNameFor(variable: string): string {
  return variable.replace(/^POTLUCK_/, "").toLowerCase().replaceAll("_", "-");
}

function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("--")) continue;
    const eq = arg.indexOf("=");
    if (eq > 0) {
      flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    } else {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        flags.set(arg.slice(2), next);
        i++;
      } else {
        flags.set(arg.slice(2), "true");
      }
    }
  }
  return flags;
}

/** Shared field parsers for configuration schemas. */
export const ConfigFields = {
  port: (fallback: number) => z.coerce.number().int("expected a TCP port number").min(1, "expected a TCP port 1-65535").max(65535, "expected a TCP port 1-65535").default(fallback),
  flag: (fallback: boolean) =>
    z.enum(["0", "1", "true", "false", "yes", "no"], "expected 0 or 1").default(fallback ? "1" : "0").transform((v) => v === "1" || v === "true" || v === "yes"),
  url: (protocols: readonly string[]) =>
    z.url(`expected a URL (${protocols.join(", ")})`).refine((u) => protocols.some((p) => u.startsWith(`${p}:`)), `expected a URL starting with ${protocols.map((p) => `${p}:`).join(" or ")}`),
} as const;

/** Loads configuration for a service's main.ts: a bad value prints one line and exits 2. */
export function loadConfigOrExit<T>(service: string, load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${service}: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}
