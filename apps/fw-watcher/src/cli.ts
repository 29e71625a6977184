import { Defaults, flagNameFor } from "@potluck/protocol";
import { FwWatcherConfigSchema } from "./config.js";

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

/** Flags this CLI accepts: its own switches plus one per configuration variable. */
const switches = new Set<string>([...Modes, "json", "help"]);
const configFlags = new Set(Object.keys(FwWatcherConfigSchema.shape).map(flagNameFor));

export class UsageError extends Error {
  override name = "UsageError";
}

/** Reads the mode from argv; configuration flags are left to parseConfig. */
export function parseInvocation(argv: readonly string[]): Invocation {
  const modes: Mode[] = [];
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "-h") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const name = arg.slice(2).split("=")[0] ?? "";
    if (configFlags.has(name)) {
      if (!arg.includes("=")) i++; // its value is the next argument
      continue;
    }
    if (!switches.has(name)) throw new UsageError(`unknown option --${name}`);
    if (name === "json") json = true;
    else if (name === "help") help = true;
    else modes.push(name as Mode);
  }
  if (modes.length > 1) throw new UsageError(`choose one of --install, --check, --watch, --uninstall (got ${modes.map((m) => `--${m}`).join(" ")})`);
  return { mode: modes[0] ?? "watch", json, help };
}
