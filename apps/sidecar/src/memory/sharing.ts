import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { ErrorCode, MemoryLimits, PotluckHttpError, ProjectShare } from "@potluck/protocol";

/**
 * Who may search this machine's memory. Own machines (same owner) may search all of it while the
 * opt-in is on: it starts from POTLUCK_PEER_MEMORY_ENABLED, `potluck memory share on|off` (PUT
 * /memory/peer-search) changes it in the running sidecar and, like the variable, a change lasts
 * until the next restart. Machines of another owner may search one project only, and only once
 * this machine shares that project with that owner by name (`potluck memory share PROJECT --with
 * OWNER`); those grants are kept in the data directory, so a restart keeps them. The routes and
 * the capabilities report read both on every request, so a change needs no restart.
 */
export interface PeerSharing {
  enabled(): boolean;
  set(enabled: boolean): void;
  /** Every (project, owner) grant, oldest first. */
  shares(): ProjectShare[];
  /** Adds a grant (a grant already there is kept as it is); persisted before it answers. */
  share(grant: ProjectShare): void;
  /** Removes a grant; false when there was none. */
  unshare(grant: ProjectShare): boolean;
  /** Whether machines of `owner` (another owner) may search `project`. */
  allows(owner: string, project: string): boolean;
}

/** The grants file in the data directory. */
export const sharesFileName = "memory-shares.json";

const SharesFile = z.object({ version: z.literal(1), shares: z.array(ProjectShare).max(MemoryLimits.sharesMax) });

/**
 * `path`: where grants persist (DATA_DIR/memory-shares.json); without it they live in this
 * process only (tests). A file that cannot be read shares nothing, says why, and is replaced by
 * the next change: failing closed keeps a corrupt file from sharing more than was granted.
 */
export function peerSharing(
  initial: boolean,
  options: { path?: string; log?: (message: string) => void } = {},
): PeerSharing {
  let enabled = initial;
  const { path } = options;
  const grants: ProjectShare[] = path === undefined ? [] : readShares(path, options.log ?? (() => undefined));
  const key = (g: ProjectShare) => `${g.owner}\u0000${g.project}`;
  const save = (next: readonly ProjectShare[]) => {
    if (path !== undefined) writeShares(path, next);
    grants.splice(0, grants.length, ...next);
  };
  return {
    enabled: () => enabled,
    set: (next) => {
      enabled = next;
    },
    shares: () => grants.map((g) => ({ ...g })),
    share: (grant) => {
      if (grants.some((g) => key(g) === key(grant))) return;
      if (grants.length >= MemoryLimits.sharesMax) {
        throw new PotluckHttpError(
          409,
          ErrorCode.conflict,
          `this machine already shares ${MemoryLimits.sharesMax} projects, the most it keeps; unshare one first`,
        );
      }
      save([...grants, { project: grant.project, owner: grant.owner }]);
    },
    unshare: (grant) => {
      const next = grants.filter((g) => key(g) !== key(grant));
      if (next.length === grants.length) return false;
      save(next);
      return true;
    },
    allows: (owner, project) => grants.some((g) => g.owner === owner && g.project === project),
  };
}

function readShares(path: string, log: (message: string) => void): ProjectShare[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    log(
      `reading memory shares ${path}: ${error instanceof Error ? error.message : String(error)}; nothing is shared with other owners`,
    );
    return [];
  }
  try {
    return SharesFile.parse(JSON.parse(text)).shares;
  } catch (error) {
    log(
      `reading memory shares ${path}: not a valid shares file (${error instanceof Error ? error.message.slice(0, 200) : String(error)}); nothing is shared with other owners`,
    );
    return [];
  }
}

/** Written whole to a temporary file and renamed over the old one, so a crash never leaves half a file. */
function writeShares(path: string, shares: readonly ProjectShare[]): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ version: 1, shares }, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
