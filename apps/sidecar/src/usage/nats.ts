import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";
import { ensureUsageStream } from "@potluck/service";
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
