import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { KeyLookup, ReceivedMessage } from "@potluck/peer";
import type { NatsConnection } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";
import { ensureUsageStream } from "@potluck/service";
import { streamHoldChecker, type HoldChecker } from "./hold-check.js";
import { jetStreamUsagePublisher, type MessageSigner, type UsagePublisher } from "./publisher.js";

/**
 * Usage events on the sidecar's one NATS connection (its owner drains it). The usage stream is
 * created on the first publish if it does not exist yet, the same stream the ledger creates.
 */
export function natsUsagePublisher(options: {
  nats: NatsConnection;
  prefix: string;
  log: (message: string) => void;
  sign: MessageSigner;
}): UsagePublisher {
  const { nats, prefix } = options;
  const ensureStream = async () => void (await ensureUsageStream(nats, prefix));
  return jetStreamUsagePublisher({
    js: jetstream(nats),
    ensureStream,
    subjects: subjectsFor(prefix),
    log: options.log,
    sign: options.sign,
  });
}

/**
 * Holds read back from the usage stream by sequence (JetStream's direct get on the stream the
 * ledger ingests), for the serving side's check before a job for another owner runs.
 */
export function natsHoldChecker(options: { nats: NatsConnection; prefix: string; lookupKey: KeyLookup }): HoldChecker {
  const stream = subjectsFor(options.prefix).usageStream.name;
  // No API check at creation: it is one request made when NATS connects, and if JetStream does
  // not answer then (a cluster still electing its meta leader, a server restarting) the manager
  // stays rejected for the life of the process, and unhandled until the first read. Each read is
  // its own request, failing alone (a 503 for that job) and working again once JetStream answers.
  const manager = jetstreamManager(options.nats, { checkAPI: false });
  return streamHoldChecker({
    lookupKey: options.lookupKey,
    read: async (seq): Promise<ReceivedMessage | undefined> => {
      const stored = await (await manager).streams.getMessage(stream, { seq }).catch((error: unknown) => {
        // JetStream answers 404 ("no message found") for a sequence it does not hold.
        if ((error as { code?: unknown }).code === 404 || /no message found/i.test(String(error))) return null;
        throw error;
      });
      if (stored === null) return undefined;
      return { subject: stored.subject, data: stored.data, header: (name) => stored.header.get(name) };
    },
  });
}
