import { DEFAULT_SUBJECT_ROOT, Defaults } from "@potluck/protocol";
import { ConfigFields, parseConfig, platformDataDir } from "@potluck/service";
import { z } from "zod";

const seconds = (fallback: number) =>
  z.coerce
    .number()
    .int("expected whole seconds")
    .min(1, "expected at least 1 second")
    .max(31 * 86_400)
    .default(fallback);

/** Coordinators one ledger may list: a hub runs two or three; a long list is a paste error. */
const coordinatorUrlsMax = 8;

/** Every ledger setting and its default, in one block. */
export const LedgerConfigSchema = z.object({
  POTLUCK_DATA_DIR: z.string().min(1).default(platformDataDir()),
  /** 0 picks any free port (tests run several ledgers side by side). */
  POTLUCK_LEDGER_PORT: z.coerce
    .number()
    .int("expected a TCP port number")
    .min(0, "expected a TCP port 0-65535")
    .max(65535, "expected a TCP port 0-65535")
    .default(Defaults.ledgerPort),
  POTLUCK_NATS_URL: ConfigFields.url(["nats", "tls"]).default(Defaults.natsUrl),
  /** Subject root on NATS; lets several meshes (or test runs) share one server. */
  POTLUCK_NATS_PREFIX: z
    .string()
    .regex(/^[a-z0-9_-]{1,32}$/, "expected 1-32 of a-z, 0-9, _ or -")
    .default(DEFAULT_SUBJECT_ROOT),
  DATABASE_URL: ConfigFields.url(["postgres", "postgresql"]).optional(),
  POTLUCK_BIND: z.ipv4("expected an IPv4 address to bind").default("0.0.0.0"),
  /** The log's name in its checkpoints and the signing key's name. */
  POTLUCK_LEDGER_ORIGIN: z
    .string()
    .regex(/^[^\s+]{1,128}$/, "expected 1-128 characters without spaces or '+'")
    .default("potluck.local/ledger"),
  /** The log's Ed25519 signer key (C2SP note format); created on first start if missing. */
  POTLUCK_LEDGER_KEY_FILE: z.string().min(1).optional(),
  /** Consume usage events from JetStream (0 leaves only the HTTP write path). */
  POTLUCK_LEDGER_INGEST: ConfigFields.flag(true),
  /** Durable consumer name; every ledger process of one mesh shares it. */
  POTLUCK_LEDGER_CONSUMER: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, "expected 1-64 of letters, digits, _ or -")
    .default("ledger"),
  /** How long JetStream waits for an ack before redelivering (applies when the consumer is created). */
  POTLUCK_LEDGER_ACK_WAIT: seconds(30),
  POTLUCK_LEDGER_BATCH_MAX: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000, "at most 1000 events per transaction")
    .default(1000),
  POTLUCK_LEDGER_CHECKPOINT_INTERVAL: seconds(300),
  POTLUCK_LEDGER_SNAPSHOT_INTERVAL: seconds(86_400),
  /** A file each signed checkpoint is appended to (the file anchor); "off" disables it. */
  POTLUCK_LEDGER_ANCHOR_FILE: z.string().min(1).optional(),
  /** A witness to cosign checkpoints: its add-checkpoint URL and its verifier key. */
  POTLUCK_LEDGER_WITNESS_URL: ConfigFields.url(["http", "https"]).optional(),
  POTLUCK_LEDGER_WITNESS_KEY: z.string().min(1).optional(),
  /** Bearer token for HTTP writes by the operator or a test (any event, checkpoints, snapshots). */
  POTLUCK_LEDGER_WRITE_TOKEN: z
    .string()
    .min(32, "expected a write token of at least 32 characters")
    .max(256)
    .regex(/^\S+$/, "expected a token without spaces")
    .optional(),
  /**
   * The coordinator whose roster lists the machines that may write their owner's events with
   * signed requests; a community's coordinators comma-separated (the roster is read from the one
   * that answers, the next when it fails).
   */
  POTLUCK_COORDINATOR_URL: ConfigFields.urlList(["http", "https"], coordinatorUrlsMax).optional(),
  /**
   * The hub's signing key (base64, `potluck token create` prints its fingerprint; the coordinator's
   * log prints the key): every roster answer must carry its signature. Absent: the first signed
   * answer's key is pinned for the life of the process.
   */
  POTLUCK_COORDINATOR_KEY: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, "expected the coordinator's Ed25519 public key in base64 (44 characters)")
    .optional(),
  /** Act as a witness for the log with this verifier key (serves /v1/witness/add-checkpoint). */
  POTLUCK_LEDGER_WITNESS_FOR: z.string().min(1).optional(),
});
export type LedgerConfig = z.infer<typeof LedgerConfigSchema>;

export function loadLedgerConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = process.argv.slice(2),
): LedgerConfig {
  return parseConfig(LedgerConfigSchema, env, argv);
}
