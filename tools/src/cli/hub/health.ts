import { jetstreamManager, type ConsumerInfo, type StreamInfo } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsClusterConnectOptions, natsServerUrls, redactNatsUrl, subjectsFor } from "@potluck/protocol";

/**
 * `potluck doctor --hub`: the health of what a community's hub runs on, part by part, in the order
 * each depends on the one before (as the per-path doctor reports layers): every NATS server
 * listed, the usage stream's copies, the ledger's consumer, the ledger's database. A part whose
 * dependency failed is "suppressed", not reported as broken itself.
 */
export const HubCheckStatus = { ok: "ok", warn: "warn", fail: "fail", suppressed: "suppressed" } as const;
export type HubCheckStatus = (typeof HubCheckStatus)[keyof typeof HubCheckStatus];

export interface HubCheck {
  /** `nats nats://a:4222`, `stream`, `consumer`, `database`. */
  part: string;
  status: HubCheckStatus;
  detail: string;
}

export interface HubHealth {
  healthy: boolean;
  checks: HubCheck[];
}

export interface HubHealthOptions {
  /** POTLUCK_NATS_URL: every server is checked on its own, then the cluster through all of them. */
  natsUrl: string;
  prefix: string;
  /** The ledger's durable consumer (POTLUCK_LEDGER_CONSUMER). */
  consumer: string;
  /** Reachability of the ledger's database: `select 1` through its own driver; undefined skips it. */
  database?: { shown: string; ping: () => Promise<void> } | undefined;
}

/** One server's or request's answer, bounded: a black-holed address must not hang the doctor. */
export const hubCheckTimeoutMs = 5_000;
/**
 * Messages the ledger has not yet applied above which lag is a warning: a few seconds of a busy
 * community's usage; lag that stays above it means the ledgers are down or cannot keep up.
 */
export const consumerLagWarn = 10_000;

export async function hubHealth(options: HubHealthOptions): Promise<HubHealth> {
  const checks: HubCheck[] = [];
  const servers = await Promise.all(natsServerUrls(options.natsUrl).map((url) => checkServer(url)));
  checks.push(...servers);
  const anyUp = servers.some((s) => s.status === "ok");
  let nc: NatsConnection | undefined;
  if (anyUp)
    nc = await connect({ ...natsClusterConnectOptions(options.natsUrl), timeout: hubCheckTimeoutMs }).catch(
      () => undefined,
    );
  try {
    const stream = subjectsFor(options.prefix).usageStream.name;
    const streamInfo =
      nc === undefined
        ? undefined
        : await (
            await jetstreamManager(nc, { timeout: hubCheckTimeoutMs, checkAPI: false })
          ).streams
            .info(stream)
            .catch((error: unknown) => String(error));
    checks.push(streamCheck(stream, streamInfo, options.prefix));
    const consumerInfo =
      nc === undefined || typeof streamInfo !== "object"
        ? undefined
        : await (
            await jetstreamManager(nc, { timeout: hubCheckTimeoutMs, checkAPI: false })
          ).consumers
            .info(stream, options.consumer)
            .catch((error: unknown) => String(error));
    checks.push(consumerCheck(options.consumer, consumerInfo));
  } finally {
    await nc?.close().catch(() => undefined);
  }
  if (options.database !== undefined) checks.push(await databaseCheck(options.database));
  return { healthy: checks.every((c) => c.status === "ok" || c.status === "warn"), checks };
}

/** A text report, one line a part, the way `renderReport` prints a path. */
export function renderHubHealth(health: HubHealth): string {
  const mark: Record<HubCheckStatus, string> = { ok: "ok  ", warn: "WARN", fail: "FAIL", suppressed: "--  " };
  const lines = health.checks.map((c) => `${mark[c.status]} ${c.part}: ${c.detail}`);
  return `${lines.join("\n")}\n${health.healthy ? "hub healthy" : "hub NOT healthy"}\n`;
}

async function checkServer(url: string): Promise<HubCheck> {
  const part = `nats ${redactNatsUrl(url)}`;
  try {
    const nc = await connect({
      ...natsClusterConnectOptions(url),
      timeout: hubCheckTimeoutMs,
      reconnect: false,
      // Only this server: a cluster's gossip must not make a dead one look alive through another.
      ignoreClusterUpdates: true,
    });
    const info = nc.info;
    await nc.close();
    const cluster = info?.cluster === undefined ? "standalone" : `cluster ${info.cluster}`;
    return {
      part,
      status: "ok",
      detail: `up (server ${info?.server_name ?? "?"}, ${cluster}, JetStream ${info?.jetstream === true ? "on" : "off"})`,
    };
  } catch (error) {
    return { part, status: "fail", detail: `down: ${String(error)}` };
  }
}

function streamCheck(stream: string, info: StreamInfo | string | undefined, prefix: string): HubCheck {
  const part = `stream ${stream}`;
  if (info === undefined) return { part, status: "suppressed", detail: "no NATS server answers" };
  // The usual first sight on a new hub, or a prefix that differs from the services': say which.
  if (typeof info === "string" && /stream not found/i.test(info))
    return {
      part,
      status: "fail",
      detail: `does not exist under the subject root "${prefix}": no ledger or sidecar using it has started yet; start the ledger, or give the POTLUCK_NATS_PREFIX the services use`,
    };
  if (typeof info === "string") return { part, status: "fail", detail: `not readable: ${info}` };
  const want = info.config.num_replicas;
  // A standalone server keeps one copy whatever the configured count.
  if (info.cluster?.name === undefined)
    return {
      part,
      status: want > 1 ? "warn" : "ok",
      detail: `${info.state.messages} messages; replicas 1 of ${want} current (standalone server: one copy)`,
    };
  const peers = info.cluster.replicas ?? [];
  const current = peers.filter(isCurrent).length + (info.cluster.leader === undefined ? 0 : 1);
  const shown = `${info.state.messages} messages; replicas ${current} of ${want} current${
    info.cluster.leader === undefined ? "" : `, leader ${info.cluster.leader}`
  }`;
  if (info.cluster.leader === undefined) return { part, status: "fail", detail: `no leader; ${shown}` };
  const lagging = peers
    .filter((p) => !isCurrent(p))
    .map((p) => `${p.name} ${p.offline === true ? "offline" : p.current ? "silent" : "catching up"}`);
  if (current < want) return { part, status: "warn", detail: `${shown}; ${lagging.join(", ")}` };
  return { part, status: "ok", detail: shown };
}

/**
 * A follower the leader has heard from within this is live: raft followers answer the leader's
 * heartbeats every second or so, and a killed server's `current` flag can stay set for a while.
 */
export const replicaSilenceMsMax = 10_000;

function isCurrent(peer: { current: boolean; offline?: boolean; active: number }): boolean {
  return peer.current && peer.offline !== true && peer.active / 1_000_000 < replicaSilenceMsMax;
}

function consumerCheck(durable: string, info: ConsumerInfo | string | undefined): HubCheck {
  const part = `consumer ${durable}`;
  if (info === undefined) return { part, status: "suppressed", detail: "the stream is not readable" };
  if (typeof info === "string")
    return { part, status: "fail", detail: `not readable (no ledger ever ingested?): ${info}` };
  const lag = info.num_pending + info.num_ack_pending;
  const detail = `lag ${lag} (${info.num_pending} not yet delivered, ${info.num_ack_pending} awaiting ack), ${info.num_redelivered} redelivered`;
  return { part, status: lag > consumerLagWarn ? "warn" : "ok", detail };
}

async function databaseCheck(database: { shown: string; ping: () => Promise<void> }): Promise<HubCheck> {
  const part = `database ${database.shown}`;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      database.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${hubCheckTimeoutMs / 1000} s`)),
          hubCheckTimeoutMs,
        );
      }),
    ]);
    return { part, status: "ok", detail: "reachable" };
  } catch (error) {
    return { part, status: "fail", detail: `unreachable: ${String(error)}` };
  } finally {
    clearTimeout(timer);
  }
}
