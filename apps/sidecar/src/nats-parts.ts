import type { NatsConnection } from "@nats-io/transport-node";
import type { KeyLookup } from "@potluck/peer";
import { natsPeerFirewallSource, type NatsPeerFirewall, type PeerFirewallSource } from "@potluck/diagnostics";
import { startHeartbeat, type HeartbeatOptions } from "./heartbeat.js";
import { natsHoldChecker, natsUsagePublisher } from "./usage/nats.js";
import { noHoldChecker, type HoldChecker } from "./usage/hold-check.js";
import { loggingUsagePublisher, type UsagePublisher } from "./usage/publisher.js";

export interface NatsPartsOptions extends Omit<HeartbeatOptions, "nats"> {
  /** Only a machine with a coordinator sends heartbeats: nobody else listens for them. */
  heartbeat: boolean;
  /** Identity keys of the roster's machines: a hold must be signed by the machine that names it. */
  lookupKey: KeyLookup;
}

/**
 * The parts of the sidecar that live on its one NATS connection: usage events, heartbeats and
 * peers' fw-watcher statuses. They exist from the start so the router and diagnostics can hold
 * them; until `attach` is given the connection (or when it never is), usage events are logged,
 * not published, no heartbeat is sent and no peer firewall is known. A sidecar without NATS
 * still serves its own user.
 */
export class NatsParts {
  readonly usage: UsagePublisher;
  readonly holds: HoldChecker;
  readonly peerFirewall: PeerFirewallSource;
  private published: UsagePublisher | undefined;
  private holdChecker: HoldChecker | undefined;
  private firewall: NatsPeerFirewall | undefined;
  private heartbeat: { stop(): void } | undefined;
  private closed = false;

  constructor(private readonly options: NatsPartsOptions) {
    const offline = loggingUsagePublisher(options.log);
    this.usage = { publishJob: (job) => (this.published ?? offline).publishJob(job) };
    this.holds = { check: (claim) => (this.holdChecker ?? noHoldChecker).check(claim) };
    this.peerFirewall = { latest: (machine) => this.firewall?.latest(machine) ?? null };
  }

  /** Starts every part on `nats`; the caller keeps owning (and drains) the connection. */
  attach(nats: NatsConnection): void {
    if (this.closed || this.published !== undefined) return;
    const { options } = this;
    this.published = natsUsagePublisher({ nats, prefix: options.prefix, log: options.log, sign: options.sign });
    this.holdChecker = natsHoldChecker({ nats, prefix: options.prefix, lookupKey: options.lookupKey });
    this.firewall = natsPeerFirewallSource({ nats, subjectRoot: options.prefix, log: options.log });
    if (options.heartbeat) this.heartbeat = startHeartbeat({ ...options, nats });
  }

  /** Stops the heartbeat and the firewall subscription; usage goes back to being logged. */
  async close(): Promise<void> {
    this.closed = true;
    this.heartbeat?.stop();
    this.published = undefined;
    this.holdChecker = undefined;
    await this.firewall?.close();
  }
}
