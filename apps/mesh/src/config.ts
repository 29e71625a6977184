import { parseFlags, resolveDataDir } from "@potluck/service";

export interface MeshConfig {
  dataDir: string;
  natsUrl?: string;
  natsPrefix?: string;
  help: boolean;
}

export const meshUsage = `Usage: potluck-mesh [--data-dir DIR] [--nats URL]

The mesh agent every machine runs (apps/mesh/potluck-mesh.service): brings potluck0 up from the
data dir's saved enrollment and keeps it in step with the coordinator's roster until stopped.
Enroll once first with \`potluck join COORDINATOR_URL TOKEN\` (as root, same data dir).
  --data-dir  POTLUCK_DATA_DIR, else ~/.potluck
  --nats URL  POTLUCK_NATS_URL: instant roster changes and heartbeats (else roster polling only);
              subject root POTLUCK_NATS_PREFIX`;

/** Flags win over the environment; every default is here. Throws ArgsError naming a bad flag. */
export function loadMeshConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): MeshConfig {
  const { flags } = parseFlags(argv, { strings: ["data-dir", "nats"], booleans: ["help"], positionals: false });
  return {
    dataDir: resolveDataDir(flags.get("data-dir"), { env }),
    natsUrl: flags.get("nats") ?? env.POTLUCK_NATS_URL,
    natsPrefix: env.POTLUCK_NATS_PREFIX,
    help: flags.has("help"),
  };
}
