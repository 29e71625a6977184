import { join } from "node:path";
import { repoRoot } from "../lib/repo.js";
import type { Cluster } from "./cluster.js";
import { waitForOutput } from "./hub.js";
import type { SidecarHub } from "./hub-sidecar.js";
import { createJoinToken } from "./sim-machines.js";
import type { LabHost, LabProcess } from "./types.js";

/**
 * Real machines in a community on a cluster (startCluster): what startHub gives one household —
 * `potluck join`, a data dir per host, the environment of every potluck process — for a roster
 * kept by coordinators on PostgreSQL and a NATS of three servers. startHubSidecar takes it as it
 * takes a household's hub.
 */
export interface ClusterHub extends SidecarHub {
  /**
   * A join token for `owner` (made with the admin secret, from the test's own namespace over the
   * root link), then `potluck join … --follow` on `host` until it has joined; the follower keeps
   * the host's WireGuard peers in step with the roster and is stopped with the lab.
   */
  join(host: LabHost, owner: string): Promise<LabProcess>;
}

/** `coordinatorUrl`: the coordinator machines enroll with and read the roster from (default the first). */
export function clusterHub(cluster: Cluster, coordinatorUrl: string = cluster.coordinatorUrls[0] ?? ""): ClusterHub {
  const potluck = join(repoRoot, "bin/potluck.mjs");
  const hub: ClusterHub = {
    coordinatorUrl,
    natsUrl: cluster.natsUrl,
    dataDir: (host) => join(host.runDir, "potluck"),
    // An undefined value removes a variable from a lab process's environment (see startHub).
    env: (extra = {}) => ({
      ...process.env,
      DATABASE_URL: undefined,
      POTLUCK_COORDINATOR_ADMIN_SECRET: undefined,
      POTLUCK_NATS_PREFIX: cluster.prefix,
      // Machines take the usage stream as the cluster made it: only its services set the copies.
      POTLUCK_USAGE_REPLICAS: undefined,
      POTLUCK_OLLAMA_PORT: "0",
      ...extra,
    }),
    async join(host, owner) {
      const token = await createJoinToken(coordinatorUrl, cluster.adminSecret, owner);
      const argv = [process.execPath, potluck, "join", coordinatorUrl, token, "--name", host.name];
      argv.push("--owner", owner, "--data-dir", hub.dataDir(host), "--follow");
      const follower = host.spawn("join", argv, { env: hub.env() });
      await waitForOutput(follower, /joined as/, `potluck join on ${host.name}`);
      return follower;
    },
  };
  return hub;
}
