import { hostname } from "node:os";
import { DEFAULT_SUBJECT_ROOT, Defaults, MachineName } from "@potluck/protocol";
import { ConfigFields, parseConfig, platformDataDir } from "@potluck/service";
import { z } from "zod";

/** Every fwWatcher setting and its default, in one block. */
export const FwWatcherConfigSchema = z.object({
  POTLUCK_DATA_DIR: z.string().min(1).default(platformDataDir()),
  /** Loopback status port; 0 picks a free one (tests), and the "listening" log line names it. */
  POTLUCK_FW_PORT: z.coerce
    .number()
    .int("expected a TCP port number")
    .min(0, "expected a TCP port 0-65535")
    .max(65535, "expected a TCP port 0-65535")
    .default(Defaults.fwWatcherPort),
  POTLUCK_NATS_URL: ConfigFields.url(["nats", "tls"]).default(Defaults.natsUrl),
  /** Subject root on NATS; lets several meshes (or test runs) share one server. */
  POTLUCK_NATS_PREFIX: z
    .string()
    .regex(/^[a-z0-9_-]{1,32}$/, "expected 1-32 of a-z, 0-9, _ or -")
    .default(DEFAULT_SUBJECT_ROOT),
  POTLUCK_MACHINE: MachineName.default(hostname().split(".")[0]?.toLowerCase() ?? "machine"),
  POTLUCK_INTERFACE: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,15}$/, "expected a network interface name (1-15 characters)")
    .default(Defaults.interfaceName),
  POTLUCK_FW_WATCH_INTERVAL: z.coerce
    .number()
    .min(0.1, "expected at least 0.1 seconds")
    .max(3600, "expected at most 3600 seconds")
    .default(Defaults.fwWatchIntervalS),
  /** The nft command, split on spaces (e.g. "ip netns exec lab1 nft" to manage another namespace). */
  POTLUCK_FW_NFT: z
    .string()
    .regex(/^[A-Za-z0-9_./ -]{1,200}$/, "expected a command line such as nft or /usr/sbin/nft")
    .default("nft"),
});
export type FwWatcherConfig = z.infer<typeof FwWatcherConfigSchema>;

/** The command line's switches beside the configuration flags; cli.ts reads them. */
export const FwWatcherSwitches = ["install", "check", "watch", "uninstall", "json", "help"] as const;

export function loadFwWatcherConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = process.argv.slice(2),
): FwWatcherConfig {
  return parseConfig(
    FwWatcherConfigSchema,
    env,
    argv.map((arg) => (arg === "-h" ? "--help" : arg)),
    { booleans: FwWatcherSwitches },
  );
}
