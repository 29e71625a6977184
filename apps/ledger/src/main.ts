import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { drainOnSignal, loadConfigOrExit, natsConnectOptions } from "@potluck/protocol";
import { pino } from "pino";
import type { Anchor } from "./anchors/anchor.js";
import { FileAnchor } from "./anchors/file-anchor.js";
import { drainOutbox } from "./anchors/outbox.js";
import { Witness, WitnessAnchor } from "./anchors/witness.js";
import { buildLedgerApp } from "./app.js";
import { CoordinatorRoster } from "./auth/roster.js";
import { loadLedgerConfig, type LedgerConfig } from "./config.js";
import { openLedgerDb } from "./db/open.js";
import { ensureUsageStream, startIngest } from "./ingest/jetstream.js";
import { loadOrCreateSigner } from "./keys.js";
import { Ledger } from "./ledger/service.js";
import { createLedgerMetrics } from "./metrics.js";
import { latestSnapshot } from "./ledger/snapshot.js";
import { NoteAlg, parseVerifierKey } from "@potluck/ledger-proof";

const log = pino({ name: "ledger" });
const config = loadConfigOrExit("potluck-ledger", () => loadLedgerConfig());
/** How often the outbox and the snapshot clock are looked at; the intervals themselves are configured. */
const housekeepingMs = 5_000;

async function start(cfg: LedgerConfig) {
  mkdirSync(cfg.POTLUCK_DATA_DIR, { recursive: true, mode: 0o700 });
  const opened = await openLedgerDb({ ...(cfg.DATABASE_URL === undefined ? {} : { databaseUrl: cfg.DATABASE_URL }), dataDir: cfg.POTLUCK_DATA_DIR });
  const signer = await loadOrCreateSigner(cfg.POTLUCK_LEDGER_KEY_FILE ?? join(cfg.POTLUCK_DATA_DIR, "ledger.key"), cfg.POTLUCK_LEDGER_ORIGIN);
  const anchors: Anchor[] = [];
  let ledger: Ledger | undefined;
  if (cfg.POTLUCK_LEDGER_ANCHOR_FILE !== "off") anchors.push(new FileAnchor(cfg.POTLUCK_LEDGER_ANCHOR_FILE ?? join(cfg.POTLUCK_DATA_DIR, "ledger-checkpoints.jsonl")));
  if (cfg.POTLUCK_LEDGER_WITNESS_URL !== undefined && cfg.POTLUCK_LEDGER_WITNESS_KEY !== undefined) {
    anchors.push(new WitnessAnchor(cfg.POTLUCK_LEDGER_WITNESS_URL, parseVerifierKey(cfg.POTLUCK_LEDGER_WITNESS_KEY), (a, b) => (ledger as Ledger).log.consistency(a, b)));
  }
  ledger = new Ledger(opened.db, signer, cfg.POTLUCK_LEDGER_ORIGIN, anchors);
  const witness = cfg.POTLUCK_LEDGER_WITNESS_FOR === undefined ? undefined : new Witness(parseVerifierKey(cfg.POTLUCK_LEDGER_WITNESS_FOR), await loadOrCreateSigner(join(cfg.POTLUCK_DATA_DIR, "witness.key"), `${cfg.POTLUCK_LEDGER_ORIGIN}-witness`, NoteAlg.cosignatureV1), undefined, join(cfg.POTLUCK_DATA_DIR, "witness-state.json"));
  const writeAuth = {
    ...(cfg.POTLUCK_LEDGER_WRITE_TOKEN === undefined ? {} : { token: cfg.POTLUCK_LEDGER_WRITE_TOKEN }),
    ...(cfg.POTLUCK_COORDINATOR_URL === undefined ? {} : { machines: new CoordinatorRoster(cfg.POTLUCK_COORDINATOR_URL) }),
  };
  if (writeAuth.token === undefined && writeAuth.machines === undefined) log.warn("no HTTP writers configured (POTLUCK_LEDGER_WRITE_TOKEN, POTLUCK_COORDINATOR_URL): HTTP writes are refused; JetStream ingest is unaffected");
  const app = buildLedgerApp({ startedAt: Date.now(), ledger, metrics: createLedgerMetrics(ledger), writeAuth, ...(witness === undefined ? {} : { witness }) });
  const server = serve({ fetch: app.fetch, port: cfg.POTLUCK_LEDGER_PORT, hostname: cfg.POTLUCK_BIND }, (info) => log.info({ port: info.port, db: opened.kind, key: signer.vkey }, "ledger listening"));

  let nc: NatsConnection | undefined;
  let ingest: { stop: () => Promise<void> } | undefined;
  if (cfg.POTLUCK_LEDGER_INGEST) {
    nc = await connect({ ...natsConnectOptions(cfg.POTLUCK_NATS_URL), name: "potluck-ledger", maxReconnectAttempts: -1 });
    const { stream } = await ensureUsageStream(nc, cfg.POTLUCK_NATS_PREFIX, cfg.POTLUCK_LEDGER_CONSUMER, cfg.POTLUCK_LEDGER_ACK_WAIT * 1000);
    ingest = startIngest({
      nc, ledger, stream, durable: cfg.POTLUCK_LEDGER_CONSUMER, batchMax: cfg.POTLUCK_LEDGER_BATCH_MAX, log: (o, m) => log.warn(o, m),
      onStall: (stalledMs) => {
        // Crash-only: the supervisor (systemd, potluck up) starts a fresh process; the batch is redelivered.
        log.fatal({ stalledMs }, "ingest: an append has not settled (database connection lost mid-transaction); exiting for a restart");
        process.exit(70);
      },
    });
    log.info({ stream }, "ledger ingesting usage events");
  }
  const timers = housekeeping(ledger, anchors, cfg);
  drainOnSignal({
    log: (message) => log.info(message),
    close: async () => {
      for (const t of timers) clearInterval(t);
      await ingest?.stop();
      await nc?.drain();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      await opened.close();
    },
  });
}

/** Periodic checkpoints, daily (configurable) snapshots and anchor publishing; none of it blocks metering. */
function housekeeping(ledger: Ledger, anchors: Anchor[], cfg: LedgerConfig): NodeJS.Timeout[] {
  const guard = (what: string, run: () => Promise<unknown>) => () => void run().catch((error: unknown) => log.warn({ err: (error as Error).message }, `${what} failed; will retry`));
  return [
    setInterval(guard("checkpoint", () => ledger.checkpoint()), cfg.POTLUCK_LEDGER_CHECKPOINT_INTERVAL * 1000),
    setInterval(guard("anchoring", () => drainOutbox(ledger.db, anchors)), housekeepingMs),
    setInterval(
      guard("snapshot", async () => {
        const last = await latestSnapshot(ledger.db);
        if (last === undefined || Date.now() - last.record.createdAtMs >= cfg.POTLUCK_LEDGER_SNAPSHOT_INTERVAL * 1000) await ledger.snapshot();
      }),
      Math.min(housekeepingMs * 12, cfg.POTLUCK_LEDGER_SNAPSHOT_INTERVAL * 1000),
    ),
  ];
}

start(config).catch((error: unknown) => {
  log.error({ err: (error as Error).message }, "ledger failed to start");
  process.exit(1);
});
