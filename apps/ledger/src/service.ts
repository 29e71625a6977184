import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, messageOf, silentLogger, splitUrlList, type Logger } from "@potluck/service";
import type { Anchor } from "./anchors/anchor.js";
import { FileAnchor } from "./anchors/file-anchor.js";
import { Witness, WitnessAnchor } from "./anchors/witness.js";
import { buildLedgerApp } from "./app.js";
import { adminKeyFor } from "./auth/admin.js";
import { coordinatorDirectory, type MachineDirectory } from "./auth/roster.js";
import { usageVerifier } from "./ingest/verify-usage.js";
import type { WriteAuth } from "./auth/writers.js";
import type { LedgerConfig } from "./config.js";
import { openLedgerDb, type OpenedDb } from "./db/open.js";
import { ensureUsageConsumer, startIngest } from "./ingest/jetstream.js";
import { loadOrCreateSigner } from "./keys.js";
import { Ledger } from "./ledger/service.js";
import { createLedgerMetrics } from "./metrics.js";
import { NoteAlg, parseVerifierKey } from "@potluck/ledger-proof";

/** How often the outbox and the snapshot clock are looked at; the intervals themselves are configured. */
const housekeepingMs = 5_000;

export interface LedgerOverrides {
  log?: Logger;
  /**
   * A connection the caller owns (and closes); without it, and with ingest on, the service opens and drains its own.
   */
  nats?: NatsConnection;
  /**
   * An append that has not settled (see startIngest). main.ts exits for a fresh process
   * (crash-only; the batch is redelivered); without this it is logged as an error.
   */
  onIngestStall?: (stalledMs: number) => void;
}

export interface LedgerService {
  app: ReturnType<typeof buildLedgerApp>;
  ledger: Ledger;
  database: OpenedDb;
  /** The NATS connection ingest uses; undefined with POTLUCK_LEDGER_INGEST=0. */
  nats: NatsConnection | undefined;
  /** Stops housekeeping, finishes the ingest batch in hand, drains NATS and closes the database. */
  close(): Promise<void>;
}

/** Everything main.ts wires, as one function so tests, benches and `potluck up` run the real thing. */
export async function startLedgerService(
  config: LedgerConfig,
  overrides: LedgerOverrides = {},
): Promise<LedgerService> {
  const { log = silentLogger } = overrides;
  mkdirSync(config.POTLUCK_DATA_DIR, { recursive: true, mode: 0o700 });
  const database = await openLedgerDb({
    ...(config.DATABASE_URL === undefined ? {} : { databaseUrl: config.DATABASE_URL }),
    dataDir: config.POTLUCK_DATA_DIR,
  });
  let nats: NatsConnection | undefined;
  try {
    const signer = await loadOrCreateSigner(
      config.POTLUCK_LEDGER_KEY_FILE ?? join(config.POTLUCK_DATA_DIR, "ledger.key"),
      config.POTLUCK_LEDGER_ORIGIN,
    );
    // The witness anchor proves consistency from the ledger's own log, which needs the anchors first.
    let ledger: Ledger | undefined;
    const anchors = anchorsFor(config, (a, b) => (ledger as Ledger).log.consistency(a, b));
    ledger = new Ledger(database.db, signer, config.POTLUCK_LEDGER_ORIGIN, anchors);
    const machines = machinesFor(config, (message) => log.warn(message));
    const writeAuth = writeAuthFor(config, machines);
    if (writeAuth.adminKey === undefined)
      log.warn(
        "no admin key (POTLUCK_COORDINATOR_KEY, or the hub's DATA_DIR/coordinator/signing-ed25519.pem): grants (adjust) are refused",
      );
    if (writeAuth.token === undefined && writeAuth.machines === undefined)
      log.warn(
        "no HTTP writers configured (POTLUCK_LEDGER_WRITE_TOKEN, POTLUCK_COORDINATOR_URL): HTTP writes are refused; JetStream ingest is unaffected",
      );
    const witness = await witnessFor(config);
    const app = buildLedgerApp({
      startedAt: Date.now(),
      ledger,
      metrics: createLedgerMetrics(ledger),
      writeAuth,
      log,
      ...(witness === undefined ? {} : { witness }),
    });
    let ingest: { stop: () => Promise<void> } | undefined;
    if (config.POTLUCK_LEDGER_INGEST) {
      nats = overrides.nats ?? (await connectNats({ url: config.POTLUCK_NATS_URL, name: "potluck-ledger", log }));
      const { stream } = await ensureUsageConsumer(
        nats,
        config.POTLUCK_NATS_PREFIX,
        config.POTLUCK_LEDGER_CONSUMER,
        config.POTLUCK_LEDGER_ACK_WAIT * 1000,
      );
      const onStall =
        overrides.onIngestStall ??
        ((stalledMs: number) => log.error({ stalledMs }, "ingest: an append has not settled"));
      ingest = startIngest({
        nc: nats,
        ledger,
        stream,
        durable: config.POTLUCK_LEDGER_CONSUMER,
        batchMax: config.POTLUCK_LEDGER_BATCH_MAX,
        log: (o, m) => log.warn(o, m),
        onStall,
        ...(machines === undefined ? {} : { verify: usageVerifier(machines) }),
      });
      log.info({ stream }, "ledger ingesting usage events");
      if (machines === undefined)
        log.warn(
          "usage events on JetStream are applied without checking who signed them: no POTLUCK_COORDINATOR_URL to read the roster from",
        );
    }
    const timers = housekeeping(ledger, config, log);
    const ownNats = overrides.nats === undefined ? nats : undefined;
    return {
      app,
      ledger,
      database,
      nats,
      async close() {
        for (const timer of timers) clearInterval(timer);
        await ingest?.stop();
        await ownNats?.drain().catch(() => undefined);
        await database.close();
      },
    };
  } catch (error) {
    if (overrides.nats === undefined) await nats?.close().catch(() => undefined);
    await database.close();
    throw error;
  }
}

function anchorsFor(config: LedgerConfig, consistency: (from: number, to: number) => Promise<Buffer[]>): Anchor[] {
  const anchors: Anchor[] = [];
  if (config.POTLUCK_LEDGER_ANCHOR_FILE !== "off")
    anchors.push(
      new FileAnchor(config.POTLUCK_LEDGER_ANCHOR_FILE ?? join(config.POTLUCK_DATA_DIR, "ledger-checkpoints.jsonl")),
    );
  if (config.POTLUCK_LEDGER_WITNESS_URL !== undefined && config.POTLUCK_LEDGER_WITNESS_KEY !== undefined) {
    anchors.push(
      new WitnessAnchor(
        config.POTLUCK_LEDGER_WITNESS_URL,
        parseVerifierKey(config.POTLUCK_LEDGER_WITNESS_KEY),
        consistency,
      ),
    );
  }
  return anchors;
}

/** The roster's machines (signed answers from the coordinator): HTTP writers and usage signers. */
function machinesFor(config: LedgerConfig, log: (message: string) => void): MachineDirectory | undefined {
  if (config.POTLUCK_COORDINATOR_URL === undefined) return undefined;
  return coordinatorDirectory({
    url: splitUrlList(config.POTLUCK_COORDINATOR_URL),
    ...(config.POTLUCK_COORDINATOR_KEY === undefined ? {} : { coordinatorKey: config.POTLUCK_COORDINATOR_KEY }),
    log,
  });
}

function writeAuthFor(config: LedgerConfig, machines: MachineDirectory | undefined): WriteAuth {
  const adminKey = adminKeyFor({ coordinatorKey: config.POTLUCK_COORDINATOR_KEY, dataDir: config.POTLUCK_DATA_DIR });
  return {
    ...(config.POTLUCK_LEDGER_WRITE_TOKEN === undefined ? {} : { token: config.POTLUCK_LEDGER_WRITE_TOKEN }),
    ...(machines === undefined ? {} : { machines }),
    ...(adminKey === undefined ? {} : { adminKey }),
  };
}

async function witnessFor(config: LedgerConfig): Promise<Witness | undefined> {
  if (config.POTLUCK_LEDGER_WITNESS_FOR === undefined) return undefined;
  const signer = await loadOrCreateSigner(
    join(config.POTLUCK_DATA_DIR, "witness.key"),
    `${config.POTLUCK_LEDGER_ORIGIN}-witness`,
    NoteAlg.cosignatureV1,
  );
  return new Witness(
    parseVerifierKey(config.POTLUCK_LEDGER_WITNESS_FOR),
    signer,
    undefined,
    join(config.POTLUCK_DATA_DIR, "witness-state.json"),
  );
}

/** Periodic checkpoints, daily (configurable) snapshots and anchor publishing; none of it blocks metering. */
function housekeeping(ledger: Ledger, config: LedgerConfig, log: Logger): NodeJS.Timeout[] {
  const guard = (what: string, run: () => Promise<unknown>) => () =>
    void run().catch((error: unknown) => log.warn({ err: messageOf(error) }, `${what} failed; will retry`));
  const snapshotMs = config.POTLUCK_LEDGER_SNAPSHOT_INTERVAL * 1000;
  return [
    setInterval(
      guard("checkpoint", () => ledger.checkpoint()),
      config.POTLUCK_LEDGER_CHECKPOINT_INTERVAL * 1000,
    ),
    setInterval(
      guard("anchoring", () => ledger.publishAnchors()),
      housekeepingMs,
    ),
    setInterval(
      guard("snapshot", () => ledger.snapshotIfDue(snapshotMs)),
      Math.min(housekeepingMs * 12, snapshotMs),
    ),
    setInterval(
      guard("expiring open holds", () => ledger.expireHolds()),
      housekeepingMs * 12,
    ),
  ];
}
