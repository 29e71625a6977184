import { CoordinatorLimits, Heartbeat, HeartbeatTiming, RosterChanged, subjectsFor } from "@potluck/protocol";
import { ReplayCache, SigningLimits, VerifyFailure, verifyMessage } from "@potluck/peer";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "@potluck/service";
import type { CoordinatorState, RosterEvents } from "./state.js";

/** Distinct (machine, reason) pairs whose dropped heartbeats are logged; the counter counts them all. */
const heartbeatWarningsMax = 1_000;

/**
 * Heartbeat nonces remembered at once. Every machine of a full roster beats once per
 * HeartbeatTiming.intervalMs and each beat's nonce is kept for the signing window
 * (SigningLimits.clockSkewMsMax): the beats of one window, plus the one being recorded (a machine's
 * old nonces go only when it next beats), plus one for timer jitter. One machine's own maximum
 * (SigningLimits.nonceSignerEntriesMax) comes on top, so a single machine beating far too often
 * cannot fill it. The library's default holds fewer beats than a full roster sends in one window,
 * and a full ReplayCache makes room by scanning every signer on every beat, which costs far more
 * than verifying the beat (BENCHMARKS.md, heartbeat fan-in).
 */
export const heartbeatNoncesMax =
  CoordinatorLimits.rosterMachinesMax * (Math.ceil(SigningLimits.clockSkewMsMax / HeartbeatTiming.intervalMs) + 2) +
  SigningLimits.nonceSignerEntriesMax;

/** The replay cache heartbeats are checked against: sized for a full roster (heartbeatNoncesMax). */
export function heartbeatReplayCache(): ReplayCache {
  return new ReplayCache(heartbeatNoncesMax);
}

/** Roster changes go out on `<root>.roster.changed`; core NATS, as machines also poll the roster. */
export function natsRosterEvents(nc: NatsConnection, prefix: string, log?: Logger): RosterEvents {
  const subject = subjectsFor(prefix).rosterChanged;
  return {
    publish(change) {
      try {
        nc.publish(subject, JSON.stringify(RosterChanged.parse(change)));
      } catch (error) {
        log?.warn({ err: error, change }, "publishing roster change failed");
      }
    },
  };
}

/**
 * Feeds every `<root>.heartbeat.<machine>` message into the state object. A message whose body
 * fails the schema, names another machine than its subject, or is not signed by that machine's
 * identity key (fresh timestamp, unused nonce) is dropped and counted, never trusted: holding the
 * hub's NATS secret lets a machine publish, not speak for another. Connection drops are reported
 * to the heartbeat tracker so our own outage is not blamed on the machines.
 */
export function subscribeHeartbeats(
  nc: NatsConnection,
  prefix: string,
  state: CoordinatorState,
  log?: Logger,
): { rejected: () => number } {
  const subjects = subjectsFor(prefix);
  const subjectPrefix = subjects.heartbeatAll.slice(0, -1);
  const replay = heartbeatReplayCache();
  const warned = new Set<string>();
  let rejected = 0;
  const reject = (machine: string, failure: string, message: string) => {
    rejected++;
    // Once per machine and reason (bounded), so a misconfigured machine cannot flood the log.
    const key = `${machine}\n${failure}`;
    if (warned.has(key) || warned.size >= heartbeatWarningsMax) return;
    warned.add(key);
    log?.warn({ machine, failure }, `heartbeat dropped: ${message}`);
  };
  nc.subscribe(subjects.heartbeatAll, {
    callback: (error, msg) => {
      if (error !== null) return;
      let body: unknown;
      try {
        body = msg.json();
      } catch {
        rejected++;
        return;
      }
      const parsed = Heartbeat.safeParse(body);
      if (!parsed.success || msg.subject !== `${subjectPrefix}${parsed.data.machine}`) {
        rejected++;
        return;
      }
      const beat = parsed.data;
      void verifyMessage(
        { subject: msg.subject, data: msg.data, header: (name) => msg.headers?.get(name) },
        { lookupKey: (name) => state.identityKeyOf(name), replay },
      ).then((verdict) => {
        if (verdict.ok) {
          state.heartbeat(beat);
          return;
        }
        if (verdict.failure === VerifyFailure.unknownKey) state.unknownHeartbeat();
        reject(beat.machine, verdict.failure, verdict.message);
      });
    },
  });
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") {
        state.heartbeats.noteDisconnect();
        log?.warn({ server: status.server }, "NATS disconnected; heartbeats paused");
      } else if (status.type === "reconnect") {
        state.heartbeats.noteReconnect();
        log?.info({ server: status.server }, "NATS reconnected; machines get the reconnect grace");
      }
    }
  })();
  return { rejected: () => rejected };
}
