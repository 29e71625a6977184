import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { ConfigFields, DEFAULT_SUBJECT_ROOT, Defaults, MachineName, OwnerName, parseConfig } from "@potluck/protocol";
import { z } from "zod";

/** Every sidecar setting and its default, in one block. */
export const SidecarConfigSchema = z.object({
  POTLUCK_DATA_DIR: z.string().min(1).default(join(homedir(), ".potluck")),
  POTLUCK_MACHINE: MachineName.default(defaultMachineName()),
  POTLUCK_OWNER: OwnerName.default("home"),
  POTLUCK_PORT: ConfigFields.port(Defaults.sidecarPort),
  POTLUCK_BIND: z.ipv4("expected an IPv4 address to bind, e.g. 0.0.0.0 or 127.0.0.1").default("0.0.0.0"),
  POTLUCK_MODELS: z.string().default(""),
  POTLUCK_EMBED_MODEL: z.string().optional(),
  POTLUCK_COORDINATOR_URL: ConfigFields.url(["http", "https"]).optional(),
  POTLUCK_NATS_URL: ConfigFields.url(["nats", "tls"]).default(Defaults.natsUrl),
  /** Subject root on NATS; lets several meshes (or test runs) share one server. */
  POTLUCK_NATS_PREFIX: z.string().regex(/^[a-z0-9_-]{1,32}$/, "expected 1-32 of a-z, 0-9, _ or -").default(DEFAULT_SUBJECT_ROOT),
  POTLUCK_PEER_MEMORY_ENABLED: ConfigFields.flag(false),
  POTLUCK_INTERFACE: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, "expected a network interface name (1-15 characters)").default(Defaults.interfaceName),
});
export type SidecarConfig = z.infer<typeof SidecarConfigSchema>;

export function loadSidecarConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): SidecarConfig {
  return parseConfig(SidecarConfigSchema, env, argv);
}

/** Host names are often upper-case or dotted; the roster wants a lower-case label. */
export function defaultMachineName(): string {
  const label = hostname().split(".")[0]?.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "") ?? "";
  return label.length > 0 ? label.slice(0, 63) : "machine";
}
