import { coordinatorRoster, fileRoster, type PeerRoster } from "@potluck/peer";
import type { RosterEntry } from "@potluck/protocol";

/** A machine this sidecar may call or be called by. */
export interface PeerRecord {
  machine: string;
  owner: string;
  /** Base URL of its sidecar over the mesh, e.g. http://100.64.0.3:8321 */
  url: string;
  identityPublicKey: string;
}

/**
 * Who is on the mesh and which key each machine signs with, as routing, the signature check and
 * fleet search see it: the one roster source (libs/peer `PeerRoster`, also read by diagnostics)
 * with this machine left out and each machine's sidecar URL filled in.
 */
export interface PeerDirectory {
  /** Every other machine (never this one). */
  peers(): Promise<PeerRecord[]>;
  /**
   * The machine whose canonical roster name is exactly `machine` (never its id or another alias),
   * with the key it signs with and its owner; undefined when no machine has that name. The
   * signature check resolves every caller through this, so a caller's owner always comes from
   * the roster, never from its request.
   */
  signer(machine: string): Promise<SignerRecord | undefined>;
}

/** A verified caller as the roster knows it. */
export interface SignerRecord {
  machine: string;
  owner: string;
  identityPublicKey: string;
}

/** An empty directory: a machine alone, before it joins a mesh. */
export const noPeers: PeerDirectory = { peers: async () => [], signer: async () => undefined };

export interface PeerAddressing {
  /** This machine, left out of `peers()`. */
  self: string;
  /** The port every peer's sidecar listens on for /peer/* calls. */
  peerPort: number;
  /** Per machine, a sidecar URL to use instead of its mesh IP (labs, tests). */
  urlOverrides?: ReadonlyMap<string, string>;
}

/**
 * The directory over a roster source. A roster that cannot be read at all lists nobody (the
 * source has logged why); one read before keeps answering (see libs/peer roster.ts).
 */
export function rosterDirectory(
  roster: PeerRoster,
  { self, peerPort, urlOverrides = new Map() }: PeerAddressing,
): PeerDirectory {
  const toRecord = (entry: RosterEntry): PeerRecord => ({
    machine: entry.name,
    owner: entry.owner,
    url: urlOverrides.get(entry.name) ?? `http://${entry.meshIp}:${peerPort}`,
    identityPublicKey: entry.identityPublicKey,
  });
  return {
    peers: async () => (await roster.entries().catch(() => [])).filter((e) => e.name !== self).map(toRecord),
    signer: async (machine) => {
      const entry = await roster.lookup(machine).catch(() => undefined);
      // The roster also answers by id; a signature names its machine by name only.
      if (entry === undefined || entry.name !== machine) return undefined;
      return { machine: entry.name, owner: entry.owner, identityPublicKey: entry.identityPublicKey };
    },
  };
}

/** A directory over a roster file (see libs/peer `fileRoster`). */
export function rosterFileDirectory(
  options: PeerAddressing & {
    path: string;
    log?: (message: string) => void;
    limits?: { recheckMs?: number };
    now?: () => number;
  },
): PeerDirectory {
  return rosterDirectory(fileRoster(options), options);
}

/** A directory over the coordinator's roster (see libs/peer `coordinatorRoster`). */
export function coordinatorDirectory(
  options: PeerAddressing & {
    url: string;
    coordinatorKey?: string;
    log?: (message: string) => void;
    limits?: { refreshMs?: number; earlyRefreshMinMs?: number; fetchTimeoutMs?: number };
  },
): PeerDirectory {
  return rosterDirectory(coordinatorRoster(options), options);
}
