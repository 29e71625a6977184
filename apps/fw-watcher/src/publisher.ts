import { connect, type NatsConnection } from "@nats-io/transport-node";
import { FwStatus, natsConnectOptions, subjectsFor } from "@potluck/protocol";
import type { WatchLog } from "./watcher.js";

export interface PublisherOptions {
  natsUrl: string;
  subjectRoot: string;
  machine: string;
  log: WatchLog;
  /** Publish an unchanged status at most this often (a heartbeat for late subscribers). */
  periodicMs?: number;
  /** Wait at least this long between connection attempts while NATS is down. */
  connectRetryMs?: number;
}

/**
 * Publishes the watcher's status on `<root>.fw.status.<machine>`: at once when it changes and at
 * most every `periodicMs` otherwise. Status is a latest-value message, so nothing is queued
 * while NATS is down: the next publish supersedes what was missed. The watch loop never waits
 * on NATS and never fails because of it.
 */
export class StatusPublisher {
  private nc: NatsConnection | undefined;
  private connecting: Promise<void> | undefined;
  private lastConnectAttemptMs = 0;
  private lastPublishMs = 0;
  private latest: FwStatus | undefined;
  private readonly subject: string;
  private readonly periodicMs: number;
  private readonly connectRetryMs: number;

  constructor(private readonly opts: PublisherOptions) {
    this.subject = subjectsFor(opts.subjectRoot).fwStatus(opts.machine);
    this.periodicMs = opts.periodicMs ?? 30_000;
    this.connectRetryMs = opts.connectRetryMs ?? 5_000;
  }

  /** Hand it every status; it decides whether this one goes out. */
  offer(status: FwStatus, changed: boolean): void {
    this.latest = status;
    const nowMs = Date.now();
    if (!changed && nowMs - this.lastPublishMs < this.periodicMs) return;
    // Assert right before writing: a malformed status is a programming error, not a message.
    const body = JSON.stringify(FwStatus.parse(status));
    if (this.nc === undefined || this.nc.isClosed()) {
      this.ensureConnected();
      return;
    }
    try {
      this.nc.publish(this.subject, body);
      this.lastPublishMs = nowMs;
    } catch (error) {
      this.opts.log.warn({ err: error instanceof Error ? error.message : String(error) }, "publishing fw status on NATS failed; will publish the next status");
    }
  }

  private ensureConnected(): void {
    if (this.connecting !== undefined || Date.now() - this.lastConnectAttemptMs < this.connectRetryMs) return;
    this.lastConnectAttemptMs = Date.now();
    this.connecting = connect({ ...natsConnectOptions(this.opts.natsUrl), name: `fw-watcher-${this.opts.machine}`, maxReconnectAttempts: -1, reconnectTimeWait: 2_000 })
      .then((nc) => {
        this.nc = nc;
        this.opts.log.info({ subject: this.subject }, "publishing fw status on NATS");
        // Subscribers learn the current state right after (re)connecting, not a tick later.
        if (this.latest !== undefined) this.offer(this.latest, true);
      })
      .catch((error: unknown) => {
        this.opts.log.warn({ err: error instanceof Error ? error.message : String(error) }, `NATS unreachable; retrying in ${this.connectRetryMs} ms`);
      })
      .finally(() => {
        this.connecting = undefined;
      });
  }

  /** Starts connecting now, so the first status goes out without waiting for a failed offer. */
  async start(): Promise<void> {
    this.ensureConnected();
    await this.connecting;
  }

  async close(): Promise<void> {
    await this.connecting;
    await this.nc?.drain().catch(() => undefined);
  }
}
