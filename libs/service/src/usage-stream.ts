import { jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { subjectsFor } from "@potluck/protocol";
import { ConfigError } from "./config.js";

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

/** JetStream keeps at most five copies of a stream (an R5 stream on a cluster of five or more). */
export const usageReplicasMax = 5;

/**
 * POTLUCK_USAGE_REPLICAS: how many servers of a NATS cluster keep the usage stream; unset means
 * "not configured" (create with one, leave an existing stream as it is). Read here, not in each
 * app's config, because every process that may create the stream (sidecars, ledgers) must agree,
 * and one that was not told must not shrink a stream another was told to replicate.
 */
export function usageReplicasFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.POTLUCK_USAGE_REPLICAS;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > usageReplicasMax)
    throw new ConfigError(
      "POTLUCK_USAGE_REPLICAS",
      `POTLUCK_USAGE_REPLICAS=${JSON.stringify(raw)}: expected a whole number of copies, 1-${usageReplicasMax}`,
    );
  return n;
}

export interface UsageStreamOptions {
  /** Copies of the stream; default POTLUCK_USAGE_REPLICAS, and without that 1 for a new stream. */
  replicas?: number | undefined;
}

/**
 * Creates the usage stream if it does not exist yet, with the configured replicas; a racing
 * creator's stream is fine. An existing stream whose replicas differ from a configured count is
 * updated to it (JetStream moves the copies; a count the cluster cannot hold is refused, and so
 * is start-up, with the server's reason). Returns its name and its replicas now.
 */
export async function ensureUsageStream(
  nc: NatsConnection,
  prefix: string,
  options: UsageStreamOptions = {},
): Promise<{ stream: string; replicas: number }> {
  const replicas = options.replicas ?? usageReplicasFromEnv();
  const config = { ...usageStreamConfig(prefix), num_replicas: replicas ?? 1 };
  const jsm = await jetstreamManager(nc);
  const existing = await jsm.streams.info(config.name).catch(() => undefined);
  if (existing === undefined) {
    const created = await jsm.streams.add(config).catch(async (error: unknown) => {
      return await jsm.streams.info(config.name).catch(() => {
        throw new Error(
          `creating the usage stream ${config.name} (replicas ${config.num_replicas}): ${String(error)}`,
          {
            cause: error,
          },
        );
      });
    });
    return { stream: config.name, replicas: created.config.num_replicas };
  }
  if (replicas === undefined || existing.config.num_replicas === replicas)
    return { stream: config.name, replicas: existing.config.num_replicas };
  try {
    const updated = await jsm.streams.update(config.name, { ...existing.config, num_replicas: replicas });
    return { stream: config.name, replicas: updated.config.num_replicas };
  } catch (error) {
    throw new Error(
      `changing the usage stream ${config.name} from ${existing.config.num_replicas} to ${replicas} replicas: ${String(error)}`,
      { cause: error },
    );
  }
}
