import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsConnectOptions, redactNatsUrl, subjectsFor } from "@potluck/protocol";
import { jetStreamUsagePublisher, loggingUsagePublisher, type UsagePublisher } from "./publisher.js";

/** How long start-up waits for NATS before running without usage publishing (and saying so). */
const connectTimeoutMs = 3_000;

/**
 * Connects to NATS for usage events. A sidecar without NATS still serves its own user; it logs
 * every cross-owner job it could not meter instead of failing the request.
 */
export async function connectUsagePublisher(options: { url: string; prefix: string; log: (message: string) => void }): Promise<{ publisher: UsagePublisher; close: () => Promise<void> }> {
  const subjects = subjectsFor(options.prefix);
  try {
    const nc = await connect({ ...natsConnectOptions(options.url), timeout: connectTimeoutMs, maxReconnectAttempts: -1, name: "potluck-sidecar" });
    const js = jetstream(nc);
    const ensureStream = async () => {
      const jsm = await jetstreamManager(nc);
      const exists = await jsm.streams.info(subjects.usageStream.name).then(() => true, () => false);
      if (!exists) await jsm.streams.add({ name: subjects.usageStream.name, subjects: [...subjects.usageStream.subjects] });
    };
    return { publisher: jetStreamUsagePublisher({ js, ensureStream, subjects, log: options.log }), close: () => nc.drain() };
  } catch (error) {
    options.log(`NATS at ${redactNatsUrl(options.url)} unavailable (${error instanceof Error ? error.message : String(error)}); usage events will be logged, not published`);
    return { publisher: loggingUsagePublisher(options.log), close: async () => undefined };
  }
}
