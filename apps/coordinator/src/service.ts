import type { NatsConnection } from "@nats-io/transport-node";
import { coordinatorKeyFingerprint } from "@potluck/peer";
import { connectNats, silentLogger, type Logger } from "@potluck/service";
import { loadOrCreateAdminSecret } from "./admin.js";
import { buildCoordinatorApp } from "./app.js";
import type { Clock } from "./clock.js";
import type { CoordinatorConfig } from "./config.js";
import { openDatabase, type OpenedDatabase } from "./db/open.js";
import { createCoordinatorMetrics } from "./metrics.js";
import { natsRosterEvents, subscribeHeartbeats } from "./nats.js";
import { loadOrCreateCoordinatorKey, type CoordinatorKey } from "./signing-key.js";
import { CoordinatorState } from "./state.js";

/** How often online/offline transitions are judged and published. */
const sweepIntervalMs = 1_000;
/** How often heartbeat receive times reach the database; the live values are in memory. */
const flushIntervalMs = 5_000;

export interface CoordinatorService {
  app: ReturnType<typeof buildCoordinatorApp>;
  state: CoordinatorState;
  database: OpenedDatabase;
  nats: NatsConnection;
  adminSecret: string;
  /** The hub's signing key: every answer a machine relies on is signed with it. */
  signingKey: CoordinatorKey;
  /** Stops timers, flushes heartbeat times, drains NATS and closes the database. */
  close(): Promise<void>;
}

export interface CoordinatorOverrides {
  log?: Logger;
  clock?: Clock;
  /** A connection the caller owns (and closes); without it the service opens and drains its own. */
  nats?: NatsConnection;
}

/** Everything main.ts wires, as one function so tests and benches run the real thing in-process. */
export async function startCoordinatorService(
  config: CoordinatorConfig,
  overrides: CoordinatorOverrides = {},
): Promise<CoordinatorService> {
  const { log = silentLogger } = overrides;
  const adminSecret = config.POTLUCK_COORDINATOR_ADMIN_SECRET ?? loadOrCreateAdminSecret(config.POTLUCK_DATA_DIR);
  const signingKey = loadOrCreateCoordinatorKey(config.POTLUCK_DATA_DIR);
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.POTLUCK_DATA_DIR });
  let nats: NatsConnection;
  try {
    nats = overrides.nats ?? (await connectNats({ url: config.POTLUCK_NATS_URL, name: "potluck-coordinator", log }));
  } catch (error) {
    await database.close();
    throw error;
  }
  const state = await CoordinatorState.open({
    db: database.db,
    owner: config.POTLUCK_OWNER,
    keyFingerprint: coordinatorKeyFingerprint(signingKey.publicKey),
    hubMachine: config.POTLUCK_HUB_MACHINE,
    clock: overrides.clock,
    events: natsRosterEvents(nats, config.POTLUCK_NATS_PREFIX, log),
  });
  const heartbeatFeed = subscribeHeartbeats(nats, config.POTLUCK_NATS_PREFIX, state, log);
  const sweep = setInterval(() => state.sweep(), sweepIntervalMs);
  const flush = setInterval(() => {
    state.flush().catch((error: unknown) => log.warn({ err: error }, "flushing heartbeat times failed; will retry"));
  }, flushIntervalMs);
  sweep.unref();
  flush.unref();
  const metrics = createCoordinatorMetrics(state, heartbeatFeed.rejected);
  const app = buildCoordinatorApp({ startedAt: Date.now(), state, adminSecret, signingKey, metrics, log });
  return {
    app,
    state,
    database,
    nats,
    adminSecret,
    signingKey,
    async close() {
      clearInterval(sweep);
      clearInterval(flush);
      if (overrides.nats === undefined) await nats.drain().catch(() => undefined);
      await state.flush().catch((error: unknown) => log.warn({ err: error }, "final heartbeat flush failed"));
      await database.close();
    },
  };
}
