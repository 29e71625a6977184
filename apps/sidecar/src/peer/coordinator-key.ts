import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hubUrlAfterJoin, MeshState, natsServerUrls, redactNatsUrl } from "@potluck/protocol";

/**
 * What `potluck join` saved in DATA_DIR/mesh/state.json (apps/mesh files.ts): the pinned
 * coordinator key and, once the hub's own machine is on the mesh, the hub's mesh address.
 * Undefined when this data dir has not joined, or the file is not a mesh state.
 */
export function joinedMeshState(dataDir: string): MeshState | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, "mesh", "state.json"), "utf8");
  } catch {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = MeshState.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/**
 * The coordinator key `potluck join` pinned, so the sidecar's roster source checks the
 * coordinator's answers against the same key as the mesh agent (undefined: not joined, or joined
 * before keys were pinned).
 */
export function pinnedCoordinatorKey(dataDir: string): string | undefined {
  return joinedMeshState(dataDir)?.coordinatorKey;
}

/** The settings that name the hub: where the sidecar reads the roster and reaches NATS. */
export interface HubUrls {
  POTLUCK_COORDINATOR_URL?: string | undefined;
  POTLUCK_NATS_URL: string;
}

/**
 * The hub's URLs as this machine should use them after its join: a URL naming the hub the way
 * this machine enrolled through it (its LAN address) is moved to the hub's mesh address, as the
 * mesh agent does (libs/protocol hub-urls.ts), so roster polls and NATS, with its secret, stay
 * inside WireGuard and reach a hub whose NATS listens on its mesh address only. Says what moved.
 */
export function hubUrlsOverMesh<C extends HubUrls>(
  config: C,
  state: MeshState | undefined,
  say: (m: string) => void,
): C {
  if (state?.hubMeshIp === undefined) return config;
  const coordinator =
    config.POTLUCK_COORDINATOR_URL === undefined ? undefined : hubUrlAfterJoin(state, config.POTLUCK_COORDINATOR_URL);
  const nats = natsServerUrls(config.POTLUCK_NATS_URL)
    .map((url) => hubUrlAfterJoin(state, url))
    .join(",");
  if (coordinator === config.POTLUCK_COORDINATOR_URL && nats === config.POTLUCK_NATS_URL) return config;
  say(
    `reaching the hub at its mesh address ${state.hubMeshIp} (this machine joined through ${new URL(state.coordinatorUrl).hostname}): ` +
      `coordinator ${coordinator ?? "(none)"}, NATS ${redactNatsUrl(nats)}`,
  );
  return {
    ...config,
    ...(coordinator === undefined ? {} : { POTLUCK_COORDINATOR_URL: coordinator }),
    POTLUCK_NATS_URL: nats,
  };
}
