import type { NatsConnection } from "@nats-io/transport-node";
import { FwStatus, subjectsFor } from "@potluck/protocol";
import type { WatchLog } from "./watcher.js";

export interface PublisherOptions {
  subjectRoot: string;
  machine: string;
  log: WatchLog;
  /** Publish an unchanged status at most this often (a heartbeat for late subscribers). */
  periodicMs?: number;
}

/**
 * Publishes the watcher's status on `<root>.fw.status.<machine>`: at once when it changes and at
 * most every `periodicMs` otherwise. Status is a latest-value message, so nothing is queued
 * while NATS is away: until a connection is attached, offers only keep the latest, and the
 * next publish supersedes what was missed. The watch loop never waits on NATS and never fails
 * because of it; the connection (and its reconnects) belongs to whoever attaches it.
 */
export class StatusPublisher {
  private nc: NatsConnection | undefined;
  private lastPublishMs = 0;
  private latest: FwStatus | undefined;
  private readonly subject: string;
  private readonly periodicMs: number;

  constructor(private readonly opts: PublisherOptions) {
    this.subject = subjectsFor(opts.subjectRoot).fwStatus(opts.machine);
    this.periodicMs = opts.periodicMs ?? 30_000;
  }

  /** Starts publishing on `nc`; subscribers learn the current state now, not a tick later. */
  attach(nc: NatsConnection): void {
    this.nc = nc;
    this.opts.log.info({ subject: this.subject }, "publishing fw status on NATS");
    if (this.latest !== undefined) this.offer(this.latest, true);
  }

  /** Hand it every status; it decides whether this one goes out. */
  offer(status: FwStatus, changed: boolean): void {
    this.latest = status;
    const nowMs = Date.now();
    if (!changed && nowMs - this.lastPublishMs < this.periodicMs) return;
    // Assert right before writing: a malformed status is a programming error, not a message.
    const body = JSON.stringify(FwStatus.parse(status));
    if (this.nc === undefined || this.nc.isClosed()) return;
    try {
      this.nc.publish(this.subject, body);
      this.lastPublishMs = nowMs;
    } catch (error) {
      this.opts.log.warn(
        { err: error instanceof Error ? error.message : String(error) },
        "publishing fw status on NATS failed; will publish the next status",
      );
    }
  }

  /** Sends what was published before the connection's owner drains it. */
  async close(): Promise<void> {
    if (this.nc !== undefined && !this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
    this.nc = undefined;
  }
}
