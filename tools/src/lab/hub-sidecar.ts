import { Defaults } from "@potluck/protocol";
import { repoRoot, serviceEntry } from "../lib/repo.js";
import { hubStartMs, type Hub } from "./hub.js";
import { waitSidecarHealthy } from "./roster-sidecar.js";
import type { LabHost, LabProcess } from "./types.js";

/** What a sidecar needs of its hub: a single household's (startHub) or a cluster's (clusterHub). */
export type SidecarHub = Pick<Hub, "env" | "dataDir" | "coordinatorUrl" | "natsUrl">;

/**
 * A sidecar of owner "home" on a lab host joined to `hub`: its data dir is the one its join used
 * (the identity key it enrolled), roster and NATS the hub's, bound on every address (peers reach
 * it over the mesh) at the default port, one model thread. Resolves once it answers /health;
 * `extra` goes on top (POTLUCK_MODELS without models for a machine that only asks, another owner…).
 */
export async function startHubSidecar(
  hub: SidecarHub,
  host: LabHost,
  extra: NodeJS.ProcessEnv = {},
): Promise<LabProcess> {
  const port = Defaults.sidecarPort;
  const proc = host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
    cwd: repoRoot,
    env: hub.env({
      POTLUCK_PORT: String(port),
      POTLUCK_MACHINE: host.name,
      POTLUCK_OWNER: "home",
      POTLUCK_DATA_DIR: hub.dataDir(host),
      POTLUCK_COORDINATOR_URL: hub.coordinatorUrl,
      POTLUCK_NATS_URL: hub.natsUrl,
      POTLUCK_BIND: "0.0.0.0",
      POTLUCK_THREADS: "1",
      POTLUCK_CONTEXT_SIZE: "4096",
      POTLUCK_PEER_MEMORY_ENABLED: "0",
      ...extra,
    }),
  });
  await waitSidecarHealthy(host, port, proc, hubStartMs);
  return proc;
}
