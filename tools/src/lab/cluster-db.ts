import { startCluster, type Cluster, type ClusterOptions } from "./cluster.js";
import { startPrivatePostgres, type PrivatePostgres } from "./postgres.js";
import type { Lab } from "./types.js";

/** The two databases a lab cluster's services share on its private PostgreSQL. */
export const clusterDatabases = { coordinator: "potluck_coordinator", ledger: "potluck_ledger" } as const;

export interface ClusterOnPostgres {
  pg: PrivatePostgres;
  cluster: Cluster;
}

/**
 * What every cluster suite, the cluster bench and `lab up --cluster` start with: a private
 * PostgreSQL on a free port that the lab reaches over its root link (the lab needs `rootLink`),
 * its two databases, and startCluster on them. PostgreSQL is removed again when the cluster does
 * not come up; after that, stopping both is the caller's.
 */
export async function startClusterOnPostgres(
  lab: Lab,
  options: Omit<ClusterOptions, "coordinatorDatabaseUrl" | "ledgerDatabaseUrl">,
): Promise<ClusterOnPostgres> {
  const rootIp = lab.rootIp;
  if (rootIp === null) throw new Error("a lab cluster needs the root link (LabOptions.rootLink)");
  const pg = await startPrivatePostgres({ listenIps: [rootIp] });
  try {
    for (const db of Object.values(clusterDatabases)) await pg.createDatabase(db);
    const cluster = await startCluster(lab, {
      ...options,
      coordinatorDatabaseUrl: pg.url(clusterDatabases.coordinator, rootIp),
      ledgerDatabaseUrl: pg.url(clusterDatabases.ledger, rootIp),
    });
    return { pg, cluster };
  } catch (error) {
    await pg.destroy().catch(() => undefined);
    throw error;
  }
}
