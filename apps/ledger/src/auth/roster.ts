import { coordinatorRoster, type PeerRoster } from "@potluck/peer";

/** What the ledger needs to know about a writing machine: its identity key and whose account it meters. */
export interface KnownMachine {
  identityPublicKey: string;
  owner: string;
}

/** Looks a machine up by name; undefined when it is not on the roster. */
export interface MachineDirectory {
  lookup(machine: string): Promise<KnownMachine | undefined>;
}

/**
 * The machines whose signatures the ledger accepts, from a roster source (libs/peer), answered
 * by canonical name only: a roster id or any other alias finds nothing, so the name a signature
 * was checked under is the name whose owner is charged.
 */
export function rosterDirectory(roster: PeerRoster): MachineDirectory {
  return {
    async lookup(machine) {
      const entry = await roster.lookup(machine);
      if (entry === undefined || entry.name !== machine) return undefined;
      return { identityPublicKey: entry.identityPublicKey, owner: entry.owner };
    },
  };
}

/**
 * The coordinator's roster as the ledger reads it: the same signed, pinned source the sidecars
 * use (libs/peer `coordinatorRoster`), so a LAN attacker answering in the coordinator's place
 * cannot add a writer. `coordinatorKey` is the hub's signing key (POTLUCK_COORDINATOR_KEY); without
 * it the first signed answer's key is pinned for the life of the process, and the log says so.
 */
export function coordinatorDirectory(options: Parameters<typeof coordinatorRoster>[0]): MachineDirectory {
  return rosterDirectory(coordinatorRoster(options));
}
