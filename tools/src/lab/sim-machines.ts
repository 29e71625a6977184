import { randomBytes } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { generateIdentity, privateKeyFromPem, signedMessageHeaders, signRequest } from "@potluck/peer";
import {
  EnrollResponse,
  Heartbeat,
  HeartbeatTiming,
  subjectsFor,
  TokenCreated,
  type UsageEvent,
} from "@potluck/protocol";

/**
 * Machines without a sidecar, for cluster tests and benches: enrolled through a coordinator's
 * real HTTP API, beating and reporting usage on NATS signed with their own identity keys exactly
 * as a sidecar signs them (libs/peer signedMessageHeaders), so coordinators and ledgers check
 * them as they would a real machine's.
 */
export interface SimMachine {
  name: string;
  owner: string;
  wireguardPublicKey: string;
  sign(parts: { method: string; path: string; body: string; target: string }): Record<string, string>;
}

/** One HTTP call to a coordinator or ledger; bounded, so a dead service fails the call, not the suite. */
const httpTimeoutMs = 15_000;

/** Creates a join token for `owner` with the admin secret and enrolls a new machine with it. */
export async function enrollSimMachine(
  coordinatorUrl: string,
  adminSecret: string,
  name: string,
  owner: string,
): Promise<SimMachine> {
  const token = await createJoinToken(coordinatorUrl, adminSecret, owner);
  const identity = generateIdentity();
  const wireguardPublicKey = randomBytes(32).toString("base64");
  EnrollResponse.parse(
    await postJson(`${coordinatorUrl}/v1/enroll`, {
      token,
      name,
      wireguardPublicKey,
      identityPublicKey: identity.publicKey,
    }),
  );
  const privateKey = privateKeyFromPem(identity.privateKeyPem);
  return { name, owner, wireguardPublicKey, sign: (parts) => signRequest(parts, { machine: name, privateKey }) };
}

/** A join token for `owner`, made with the coordinator's admin secret (what `potluck token create` asks for). */
export async function createJoinToken(coordinatorUrl: string, adminSecret: string, owner: string): Promise<string> {
  return TokenCreated.parse(
    await postJson(`${coordinatorUrl}/v1/tokens`, { owner }, { authorization: `Bearer ${adminSecret}` }),
  ).token;
}

/** Every machine beats every `intervalMs` (a sidecar's HeartbeatTiming by default), signed. */
export function startSimHeartbeats(
  nc: NatsConnection,
  prefix: string,
  machines: readonly SimMachine[],
  intervalMs: number = HeartbeatTiming.intervalMs,
): { stop(): void; beats(): number } {
  const subjects = subjectsFor(prefix);
  let seq = 0;
  let beats = 0;
  const beat = () => {
    if (nc.isClosed()) return;
    for (const m of machines) {
      const payload = JSON.stringify(
        Heartbeat.parse({
          machine: m.name,
          wireguardPublicKey: m.wireguardPublicKey,
          seq,
          sentAt: new Date().toISOString(),
          status: "ok",
        }),
      );
      const subject = subjects.heartbeat(m.name);
      // A publish while disconnected is buffered by nats.js and sent on reconnect, as a sidecar's is.
      nc.publish(subject, payload, { headers: signedMessageHeaders(subject, payload, m.sign) });
      beats += 1;
    }
    seq += 1;
  };
  beat();
  const timer = setInterval(beat, intervalMs);
  return { stop: () => clearInterval(timer), beats: () => beats };
}

/** A publish is retried (same event id: the stream drops the duplicate) this often before it counts as lost. */
const publishAttemptsMax = 240;
const publishRetryMs = 500;

export interface UsageLoad {
  /** Event ids the stream acknowledged (stored on a quorum of its replicas). */
  acked: string[];
  /** Event ids given up after publishAttemptsMax. */
  lost: string[];
  /** Stops publishing; resolves once every event in flight is acknowledged or lost. */
  stop(): Promise<void>;
}

/**
 * Each machine reports a 1-micro-credit spend of its owner's, paying `payee`, every `everyMs`,
 * and retries an unacknowledged publish with the same event id (at-least-once, as a sidecar's
 * outbox does). At most `inFlightMax` publishes wait at once per machine; a tick over it is skipped.
 */
export function startUsageLoad(
  js: JetStreamClient,
  prefix: string,
  machines: readonly SimMachine[],
  options: { everyMs: number; payee: string; inFlightMax?: number },
): UsageLoad {
  const subjects = subjectsFor(prefix);
  const acked: string[] = [];
  const lost: string[] = [];
  const pending = new Set<Promise<void>>();
  const inFlight = new Map<string, number>();
  let n = 0;
  const publishOne = async (m: SimMachine, ev: UsageEvent) => {
    const subject = subjects.usage(ev.account);
    const payload = JSON.stringify(ev);
    const headers = signedMessageHeaders(subject, payload, m.sign);
    for (let attempt = 1; attempt <= publishAttemptsMax; attempt++) {
      try {
        await js.publish(subject, payload, { msgID: ev.eventId, headers, timeout: 5_000 });
        acked.push(ev.eventId);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, publishRetryMs));
      }
    }
    lost.push(ev.eventId);
  };
  const tick = () => {
    for (const m of machines) {
      if ((inFlight.get(m.name) ?? 0) >= (options.inFlightMax ?? 200)) continue;
      n += 1;
      const ev: UsageEvent = {
        eventId: `${m.name}-${n}-${randomBytes(4).toString("hex")}`,
        jobId: `job-${m.name}-${n}`,
        kind: "spend",
        account: m.owner,
        counterparty: options.payee,
        servedBy: `${options.payee}-box`,
        model: "tiny",
        tokens: 1,
        amount: 1,
        at: new Date().toISOString(),
      };
      inFlight.set(m.name, (inFlight.get(m.name) ?? 0) + 1);
      const p = publishOne(m, ev).finally(() => {
        inFlight.set(m.name, (inFlight.get(m.name) ?? 1) - 1);
        pending.delete(p);
      });
      pending.add(p);
    }
  };
  const timer = setInterval(tick, options.everyMs);
  return {
    acked,
    lost,
    async stop() {
      clearInterval(timer);
      await Promise.all([...pending]);
    },
  };
}

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(httpTimeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as unknown;
}
