import { execFile } from "node:child_process";
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { Heartbeat, HeartbeatTiming, subjectsFor } from "@potluck/protocol";
import { signedMessageHeaders } from "@potluck/peer";

export interface HeartbeatOptions {
  /** The sidecar's one NATS connection; its owner drains it, stop() only ends the beats. */
  nats: NatsConnection;
  prefix: string;
  machine: string;
  interfaceName: string;
  /** "warming" while models load: the coordinator can show it without calling the machine offline. */
  status: () => "ok" | "warming";
  log: (message: string) => void;
  /** Signs each beat with this machine's identity key (the coordinator drops unsigned ones). */
  sign: (parts: { method: string; path: string; body: string; target: string }) => Record<string, string>;
  /** Reads the WireGuard key the interface actually uses; `wg show IF public-key` by default. */
  readKey?: (interfaceName: string) => Promise<string | null>;
}

/** `wg` answers from a local socket; slower means wireguard-go is wedged and this beat is skipped. */
const wgTimeoutMs = 2_000;
const wgOutputBytesMax = 4_096;

/**
 * Publishes this machine's heartbeat on NATS every HeartbeatTiming.intervalMs, carrying the
 * WireGuard public key the interface really has (so the coordinator can flag a stale roster key).
 * A beat is skipped, not faked, while the key cannot be read or the connection is closed.
 */
export function startHeartbeat(options: HeartbeatOptions): { stop(): void } {
  const { nats } = options;
  const subjects = subjectsFor(options.prefix);
  const readKey = options.readKey ?? wgPublicKey;
  let seq = 0;
  let keyWarned = false;
  const beat = setInterval(() => {
    if (nats.isClosed()) return;
    void readKey(options.interfaceName).then((key) => {
      if (key === null) {
        if (!keyWarned)
          options.log(
            `heartbeat: cannot read the WireGuard key of ${options.interfaceName}; heartbeats paused until it can be read`,
          );
        keyWarned = true;
        return;
      }
      keyWarned = false;
      const parsed = Heartbeat.safeParse({
        machine: options.machine,
        wireguardPublicKey: key,
        seq: seq++,
        sentAt: new Date().toISOString(),
        status: options.status(),
      });
      if (!parsed.success || nats.isClosed()) return;
      nats.publish(...signedHeartbeat(subjects.heartbeat(options.machine), parsed.data, options.sign));
    });
  }, HeartbeatTiming.intervalMs);
  options.log(`heartbeats to the coordinator over NATS every ${HeartbeatTiming.intervalMs / 1000} s`);
  return { stop: () => clearInterval(beat) };
}

function wgPublicKey(interfaceName: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(
      "wg",
      ["show", interfaceName, "public-key"],
      { timeout: wgTimeoutMs, maxBuffer: wgOutputBytesMax, encoding: "utf8" },
      (error, stdout) => {
        resolve(error === null ? stdout.trim() || null : null);
      },
    );
  });
}

/** One heartbeat with the four signing headers as NATS headers. */
function signedHeartbeat(
  subject: string,
  beat: Heartbeat,
  sign: HeartbeatOptions["sign"],
): [string, string, { headers: MsgHdrs }] {
  const payload = JSON.stringify(beat);
  return [subject, payload, { headers: signedMessageHeaders(subject, payload, sign) }];
}
