import type { NatsConnection } from "@nats-io/transport-node";
import { FwStatus, subjectsFor } from "@potluck/protocol";
import type { PeerFirewallSource, PeerFirewallStatus } from "./probes.js";

export interface NatsPeerFirewallOptions {
  /** A connection its owner drains; close() here only ends the subscription. */
  nats: NatsConnection;
  subjectRoot: string;
  /** Machines remembered at once; a household is a handful, the bound protects against a noisy subject. */
  machinesMax?: number;
  /** Told once when a malformed message is dropped. */
  log?: (message: string) => void;
  now?: () => number;
}

export interface NatsPeerFirewall extends PeerFirewallSource {
  close(): void;
}

const machinesMaxDefault = 256;
/** A status is a few kilobytes; anything much bigger is not one. */
const messageBytesMax = 64 * 1024;

/**
 * Keeps the latest fw-watcher status each machine published on `<root>.fw.status.*`. A machine
 * not heard from is simply null, and diagnostics works from its own probes as before.
 */
export function natsPeerFirewallSource(options: NatsPeerFirewallOptions): NatsPeerFirewall {
  const latest = new Map<string, PeerFirewallStatus>();
  const machinesMax = options.machinesMax ?? machinesMaxDefault;
  const now = options.now ?? Date.now;
  const subject = subjectsFor(options.subjectRoot).fwStatusAll;
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

  const subscription = options.nats.subscribe(subject, { callback: (error, msg) => (error === null ? remember(msg.data) : undefined) });

  return {
    latest: (machine) => latest.get(machine) ?? null,
    close: () => subscription.unsubscribe(),
  };
}
