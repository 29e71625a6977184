import { jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";

/**
 * The usage stream's configuration, as data: the sidecars that publish metered usage and the
 * ledger that consumes it both create the stream if it is missing, and must create the same one.
 */
export function usageStreamConfig(prefix: string): Pick<StreamConfig, "name" | "subjects" | "duplicate_window"> {
  const { usageStream } = subjectsFor(prefix);
  return {
    name: usageStream.name,
    subjects: [...usageStream.subjects],
    // A publisher retrying a message with the same id (the event id) within this window is
    // dropped by the server: at-least-once publishing, one stored event.
    duplicate_window: 120 * 1_000_000_000,
  };
}

/** Creates the usage stream if it does not exist yet; a racing creator's stream is fine. Returns its name. */
export async function ensureUsageStream(nc: NatsConnection, prefix: string): Promise<{ stream: string }> {
  const config = usageStreamConfig(prefix);
  const jsm = await jetstreamManager(nc);
  const exists = await jsm.streams.info(config.name).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await jsm.streams.add(config).catch(async (error: unknown) => {
      await jsm.streams.info(config.name).catch(() => {
        throw error;
      });
    });
  }
  return { stream: config.name };
}
