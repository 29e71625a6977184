import { Defaults } from "@potluck/protocol";
import { ArgsError, flagNameFor, parseFlags } from "@potluck/service";
import { FwWatcherConfigSchema, FwWatcherSwitches } from "./config.js";

export const Modes = ["install", "check", "watch", "uninstall"] as const;
export type Mode = (typeof Modes)[number];

export const usage = `Usage: potluck-fw-watcher [--install | --check | --watch | --uninstall] [--interface NAME] [--json]

Keeps the mesh interface (default ${Defaults.interfaceName}) allowed through VPN firewalls with three
scoped nftables accept rules, each tagged with the comment "potluck-fw-watcher:<interface>":
  ip filter ts-input     iifname <if> accept   (only when Tailscale's table and chain exist)
  inet mullvad input     iifname <if> accept   (only when Mullvad's table exists)
  inet mullvad output    oifname <if> accept
It never flushes a table and never changes a policy. Linux, nftables, root.

  --install     insert the missing rules at the top of their chains (idempotent); exit 0
  --check       report each rule present / missing / not_applicable; exit 0 when intact,
                1 when a rule is missing, 2 when the ruleset cannot be read (--json: JSON report)
  --watch       every POTLUCK_FW_WATCH_INTERVAL seconds (default ${Defaults.fwWatchIntervalS}) reapply what is
                missing; serve GET /status, POST /reapply, GET /metrics on 127.0.0.1:POTLUCK_FW_PORT
                (default ${Defaults.fwWatcherPort}); publish status on NATS. The default mode. On SIGTERM it
                removes its rules (as --uninstall does) so that stopping the service closes the hole.
  --uninstall   delete only its own rules (by handle); every other rule and policy stays as it was
  --interface NAME   mesh interface (or POTLUCK_INTERFACE)
  --help        this text

Logs are JSON lines (pino) on stdout.`;

export interface Invocation {
  mode: Mode;
  json: boolean;
  help: boolean;
}

export class UsageError extends Error {
  override name = "UsageError";
}

/** Reads the mode from argv with the one strict parser; configuration flags are left to parseConfig. */
export function parseInvocation(argv: readonly string[]): Invocation {
  let flags: Map<string, string>;
  try {
    const strings = Object.keys(FwWatcherConfigSchema.shape).map(flagNameFor);
    flags = parseFlags(
      argv.map((arg) => (arg === "-h" ? "--help" : arg)),
      { strings, booleans: FwWatcherSwitches, positionals: false },
    ).flags;
  } catch (error) {
    if (error instanceof ArgsError) throw new UsageError(error.message);
    throw error;
  }
  const modes = Modes.filter((mode) => flags.has(mode));
  if (modes.length > 1)
    throw new UsageError(
      `choose one of --install, --check, --watch, --uninstall (got ${modes.map((m) => `--${m}`).join(" ")})`,
    );
  return { mode: modes[0] ?? "watch", json: flags.has("json"), help: flags.has("help") };
}

/** Parses argv for main.ts: a usage error prints the reason and the usage and exits 2. */
export function parseInvocationOrExit(argv: readonly string[]): Invocation {
  try {
    return parseInvocation(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`potluck-fw-watcher: ${error.message}\n${usage}\n`);
    process.exit(2);
  }
}
