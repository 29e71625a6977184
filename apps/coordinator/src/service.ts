import type { NatsConnection } from "@nats-io/transport-node";
import { loadOrCreateAdminSecret } from "./admin.js";
import { buildCoordinatorApp } from "./app.js";
import type { Clock } from "./clock.js";
import type { CoordinatorConfig } from "./config.js";
import { openDatabase, type OpenedDatabase } from "./db/open.js";
import { createCoordinatorMetrics } from "./metrics.js";
import { connectNats, natsRosterEvents, subscribeHeartbeats, type Logger } from "./nats.js";
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
  /** Stops timers, flushes heartbeat times, drains NATS and closes the database. */
  close(): Promise<void>;
}

/** Everything main.ts wires, as one function so tests and benches run the real thing in-process. */
export async function startCoordinatorService(config: CoordinatorConfig, options: { log?: Logger; clock?: Clock } = {}): Promise<CoordinatorService> {
  const { log } = options;
  const adminSecret = config.POTLUCK_COORDINATOR_ADMIN_SECRET ?? loadOrCreateAdminSecret(config.POTLUCK_DATA_DIR);
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.POTLUCK_DATA_DIR });
  let nats: NatsConnection;
  try {
    nats = await connectNats(config.POTLUCK_NATS_URL);
  } catch (error) {
    await database.close();
    throw error;
  }
  const state = await CoordinatorState.open({ db: database.db, clock: options.clock, events: natsRosterEvents(nats, config.POTLUCK_NATS_PREFIX, log) });
  const heartbeatFeed = subscribeHeartbeats(nats, config.POTLUCK_NATS_PREFIX, state, log);
  const sweep = setInterval(() => state.sweep(), sweepIntervalMs);
  const flush = setInterval(() => {
    state.flush().catch((error: unknown) => log?.warn({ err: error }, "flushing heartbeat times failed; will retry"));
  }, flushIntervalMs);
  sweep.unref();
  flush.unref();
  const metrics = createCoordinatorMetrics(state, heartbeatFeed.rejected);
  const app = buildCoordinatorApp({ startedAt: Date.now(), state, adminSecret, metrics });
  return {
    app,
    state,
    database,
    nats,
    adminSecret,
    async close() {
      clearInterval(sweep);
      clearInterval(flush);
      await nats.drain().catch(() => undefined);
      await state.flush().catch((error: unknown) => log?.warn({ err: error }, "final heartbeat flush failed"));
      await database.close();
    },
  };
}
