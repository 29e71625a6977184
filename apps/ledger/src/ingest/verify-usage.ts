import { verifyDurableMessage, type ReceivedMessage } from "@potluck/peer";
import type { UsageEvent } from "@potluck/protocol";
import type { MachineDirectory } from "../auth/roster.js";

/** Undefined: the event may be applied; otherwise why it is refused (parked with that reason). */
export type UsageVerifier = (message: ReceivedMessage, event: UsageEvent) => Promise<string | undefined>;

/**
 * Who may report what. The NATS secret lets any household machine publish on the usage stream, so
 * the signature decides: the signer must be on the roster, and may only move its own owner's
 * account — a spend is published by the requester's machine and debits its owner; an earn names
 * the signer as the machine that served. A machine of another owner (or a LAN sniffer holding the
 * secret) therefore cannot bill a household or credit itself. The signature has no clock window
 * (JetStream redelivers hours later after an outage); the ledger's event-id check makes a replay
 * change nothing. A roster that cannot be read throws: the batch is retried, not parked.
 */
export function usageVerifier(machines: MachineDirectory): UsageVerifier {
  return async (message, event) => {
    let owner: string | undefined;
    const result = await verifyDurableMessage(message, {
      lookupKey: async (machine) => {
        const known = await machines.lookup(machine);
        owner = known?.owner;
        return known?.identityPublicKey;
      },
    });
    if (!result.ok) return `usage event refused (${result.failure}): ${result.message}`;
    if (event.account !== owner)
      return `usage event refused (signer_not_account_owner): ${result.machine} belongs to ${owner ?? "nobody"} and may not move account ${event.account}`;
    if (event.kind === "earn" && event.servedBy !== result.machine)
      return `usage event refused (signer_not_server): an earn for ${event.servedBy} was signed by ${result.machine}`;
    return undefined;
  };
}
