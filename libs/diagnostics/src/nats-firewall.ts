import { connect, type NatsConnection } from "@nats-io/transport-node";
import { FwStatus, natsConnectOptions, redactNatsUrl, subjectsFor } from "@potluck/protocol";
import type { PeerFirewallSource, PeerFirewallStatus } from "./probes.js";

export interface NatsPeerFirewallOptions {
  natsUrl: string;
  subjectRoot: string;
  /** Machines remembered at once; a household is a handful, the bound protects against a noisy subject. */
  machinesMax?: number;
  /** Told once when NATS cannot be reached or a message is dropped; diagnostics carries on without it. */
  log?: (message: string) => void;
  now?: () => number;
}

export interface NatsPeerFirewall extends PeerFirewallSource {
  close(): Promise<void>;
}

const machinesMaxDefault = 256;
/** A status is a few kilobytes; anything much bigger is not one. */
const messageBytesMax = 64 * 1024;

/**
 * Keeps the latest fw-watcher status each machine published on `<root>.fw.status.*`. Connecting
 * happens in the background and retries forever: until NATS answers (or when it never does), every
 * lookup is simply null and diagnostics works from its own probes as before.
 */
export function natsPeerFirewallSource(options: NatsPeerFirewallOptions): NatsPeerFirewall {
  const latest = new Map<string, PeerFirewallStatus>();
  const machinesMax = options.machinesMax ?? machinesMaxDefault;
  const now = options.now ?? Date.now;
  const subject = subjectsFor(options.subjectRoot).fwStatusAll;
  let nc: NatsConnection | undefined;
  let closed = false;
  let warnedInvalid = false;

  const remember = (data: Uint8Array) => {
    if (data.byteLength > messageBytesMax) return;
    let parsed: ReturnType<typeof FwStatus.safeParse>;
    try {
      parsed = FwStatus.safeParse(JSON.parse(new TextDecoder().decode(data)));
    } catch {
      parsed = FwStatus.safeParse(undefined);
    }
    if (!parsed.success) {
      if (!warnedInvalid) options.log?.(`ignoring a malformed fw-watcher status on ${subject}`);
      warnedInvalid = true;
      return;
    }
    const status = parsed.data;
    latest.delete(status.machine);
    latest.set(status.machine, { status, receivedAtMs: now() });
    while (latest.size > machinesMax) {
      const oldest = latest.keys().next().value;
      if (oldest === undefined) break;
      latest.delete(oldest);
    }
  };

  void connect({ ...natsConnectOptions(options.natsUrl), name: "potluck-diagnostics-fw-status", maxReconnectAttempts: -1, reconnectTimeWait: 2_000, waitOnFirstConnect: true }).then(
    (connection) => {
      if (closed) return void connection.close();
      nc = connection;
      nc.subscribe(subject, { callback: (error, msg) => (error === null ? remember(msg.data) : undefined) });
    },
    (error: unknown) => options.log?.(`peer firewall status: NATS ${redactNatsUrl(options.natsUrl)}: ${error instanceof Error ? error.message : String(error)}; diagnostics goes without it`),
  );

  return {
    latest: (machine) => latest.get(machine) ?? null,
    async close() {
      closed = true;
      await nc?.drain().catch(() => undefined);
    },
  };
}
