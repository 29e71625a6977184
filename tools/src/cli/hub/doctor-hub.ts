import { DEFAULT_SUBJECT_ROOT, Defaults } from "@potluck/protocol";
import { hubHealth, renderHubHealth } from "./health.js";

/**
 * `potluck doctor --hub`, from the hub's own settings: POTLUCK_NATS_URL (every server),
 * POTLUCK_NATS_PREFIX, POTLUCK_LEDGER_CONSUMER and the ledger's DATABASE_URL (checked only when
 * set: an embedded database has nothing to reach). Exit 0 only when the hub is healthy.
 */
export async function doctorHub(json: boolean, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const databaseUrl = env.DATABASE_URL;
  const health = await hubHealth({
    natsUrl: env.POTLUCK_NATS_URL ?? Defaults.natsUrl,
    prefix: env.POTLUCK_NATS_PREFIX ?? DEFAULT_SUBJECT_ROOT,
    consumer: env.POTLUCK_LEDGER_CONSUMER ?? "ledger",
    database:
      databaseUrl === undefined || databaseUrl === ""
        ? undefined
        : { shown: withoutCredentials(databaseUrl), ping: () => pingLedgerDatabase(databaseUrl) },
  });
  process.stdout.write(json ? `${JSON.stringify(health, null, 2)}\n` : renderHubHealth(health));
  return health.healthy ? 0 : 1;
}

/** `select 1` through the ledger's own driver, read-only (no migration runs). */
async function pingLedgerDatabase(databaseUrl: string): Promise<void> {
  // Loaded here: the ledger brings its database drivers, which other commands need not pay for.
  const { openLedgerDb } = await import("@potluck/ledger");
  const opened = await openLedgerDb({ databaseUrl, dataDir: "/nonexistent", readOnly: true });
  try {
    await opened.db.execute("select 1");
  } finally {
    await opened.close();
  }
}

function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.href;
  } catch {
    return "(unparsable DATABASE_URL)";
  }
}
