import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { FwStatus, subjectsFor } from "@potluck/protocol";
import { connectNats, messageOf, type Logger } from "@potluck/service";
import type { PeerFirewallSource, PeerFirewallStatus } from "./probes.js";

/** The process's NATS connection (its owner closes it), or a URL this source connects to itself. */
export type NatsPeerFirewallConnection = { nats: NatsConnection | Promise<NatsConnection> } | { natsUrl: string };

export type NatsPeerFirewallOptions = NatsPeerFirewallConnection & {
  subjectRoot: string;
  /** Machines remembered at once; a household is a handful, the bound protects against a noisy subject. */
  machinesMax?: number;
  /** Told once when NATS cannot be reached or a message is dropped; diagnostics carries on without it. */
  log?: (message: string) => void;
  now?: () => number;
};

export interface NatsPeerFirewall extends PeerFirewallSource {
  close(): Promise<void>;
}

const machinesMaxDefault = 256;
/** A status is a few kilobytes; anything much bigger is not one. */
const messageBytesMax = 64 * 1024;

/**
 * Keeps the latest fw-watcher status each machine published on `<root>.fw.status.*`. Connecting
 * happens in the background and retries until closed: until NATS answers (or when it never does),
 * every lookup is simply null and diagnostics works from its own probes as before.
 */
export function natsPeerFirewallSource(options: NatsPeerFirewallOptions): NatsPeerFirewall {
  const latest = new Map<string, PeerFirewallStatus>();
  const machinesMax = options.machinesMax ?? machinesMaxDefault;
  const now = options.now ?? Date.now;
  const subject = subjectsFor(options.subjectRoot).fwStatusAll;
  let subscription: Subscription | undefined;
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

  const connection = connectionOf(options);
  void connection.nats.then(
    (nc) => {
      if (nc === undefined || closed) return;
      subscription = nc.subscribe(subject, {
        callback: (error, msg) => (error === null ? remember(msg.data) : undefined),
      });
    },
    (error: unknown) => options.log?.(`peer firewall status: ${messageOf(error)}; diagnostics goes without it`),
  );

  return {
    latest: (machine) => latest.get(machine) ?? null,
    async close() {
      closed = true;
      subscription?.unsubscribe();
      await connection.close();
    },
  };
}

/** An injected connection is only subscribed on; an own one keeps trying until closed, then drains. */
function connectionOf(options: NatsPeerFirewallOptions): {
  nats: Promise<NatsConnection | undefined>;
  close(): Promise<void>;
} {
  if ("nats" in options) return { nats: Promise.resolve(options.nats), close: async () => undefined };
  const stop = new AbortController();
  const nats = connectNats({
    url: options.natsUrl,
    name: "potluck-diagnostics-fw-status",
    log: toldOnce(options.log),
    attemptsMax: Infinity,
    signal: stop.signal,
  }).catch((error: unknown) => {
    if (!stop.signal.aborted) throw error;
    return undefined;
  });
  return {
    nats,
    async close() {
      stop.abort(new Error("closed"));
      await (await nats.catch(() => undefined))?.drain().catch(() => undefined);
    },
  };
}

/** NATS being away is told once (diagnostics carries on without it), not on every retry. */
function toldOnce(log: ((message: string) => void) | undefined): Logger {
  let told = false;
  const line = (first: object | string, msg?: string) => {
    if (told || log === undefined) return;
    told = true;
    log(
      `peer firewall status: ${typeof first === "string" ? first : (msg ?? "")}; diagnostics goes without it until it answers`,
    );
  };
  return { info: () => undefined, warn: line, error: line };
}
