import { DEFAULT_SUBJECT_ROOT, Defaults, MachineName, OwnerName } from "@potluck/protocol";
import { ConfigFields, parseConfig, platformDataDir } from "@potluck/service";
import { z } from "zod";

/** Every coordinator setting and its default, in one block. */
export const CoordinatorConfigSchema = z.object({
  POTLUCK_DATA_DIR: z.string().min(1).default(platformDataDir()),
  POTLUCK_COORDINATOR_PORT: ConfigFields.port(Defaults.coordinatorPort),
  POTLUCK_NATS_URL: ConfigFields.url(["nats", "tls"]).default(Defaults.natsUrl),
  /** Subject root on NATS; lets several meshes (or test runs) share one server. */
  POTLUCK_NATS_PREFIX: z
    .string()
    .regex(/^[a-z0-9_-]{1,32}$/, "expected 1-32 of a-z, 0-9, _ or -")
    .default(DEFAULT_SUBJECT_ROOT),
  DATABASE_URL: ConfigFields.url(["postgres", "postgresql"]).optional(),
  /**
   * The household this hub belongs to: the owner a join token binds when its creator names no
   * other (the same default as a sidecar's POTLUCK_OWNER).
   */
  POTLUCK_OWNER: OwnerName.default("home"),
  POTLUCK_BIND: z.ipv4("expected an IPv4 address to bind").default("0.0.0.0"),
  /**
   * The admin secret, for several coordinators sharing one database; unset, it is read from (or
   * created in) POTLUCK_DATA_DIR/coordinator/admin-secret.
   */
  POTLUCK_COORDINATOR_ADMIN_SECRET: z.string().min(16, "expected at least 16 characters").optional(),
  /**
   * The name this host's own machine joined the mesh under: the hub every spoke (Windows, phones,
   * `potluck join --mesh external`) tunnels to. Unset: rosters name no hub and spokes cannot join.
   */
  POTLUCK_HUB_MACHINE: MachineName.optional(),
});
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;

export function loadCoordinatorConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = process.argv.slice(2),
): CoordinatorConfig {
  return parseConfig(CoordinatorConfigSchema, env, argv);
}
