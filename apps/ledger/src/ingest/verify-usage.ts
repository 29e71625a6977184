import { verifyDurableMessage, type ReceivedMessage } from "@potluck/peer";
import type { UsageEvent } from "@potluck/protocol";
import type { MachineDirectory } from "../auth/roster.js";

/** Accepted: the signer's owner (the rules' actor: who settles or voids). Refused: why (parked with that reason). */
export type UsageVerdict = { ok: true; owner: string } | { ok: false; reason: string };
export type UsageVerifier = (message: ReceivedMessage, event: UsageEvent) => Promise<UsageVerdict>;

/**
 * Who may report what. The NATS secret lets any household machine publish on the usage stream, so
 * the signature decides: the signer must be on the roster, and
 * - spend, hold, refund (the requester's side): the signer's owner is the account that pays;
 * - settle (the server's side): the signer is the machine that served (`servedBy`) and its owner
 *   is the counterparty the hold pays; the rules then check that the hold really pays that owner;
 * - void (a dispute, either side): the signer's owner is the account or the counterparty;
 * - earn: the signer is `servedBy` (the rules refuse a bare earn anyway).
 * A machine of another owner (or a LAN sniffer holding the secret) therefore cannot bill a
 * household, settle a hold it did not serve, or credit itself. The signature has no clock window
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
    if (!result.ok) return refused(`usage event refused (${result.failure}): ${result.message}`);
    if (owner === undefined) return refused(`usage event refused (unknown_signer): ${result.machine} has no owner`);
    const why = mismatch(event, result.machine, owner);
    return why === undefined ? { ok: true, owner } : refused(`usage event refused (${why[0]}): ${why[1]}`);
  };
}

/** [code, message] when the signer may not report `event`. */
function mismatch(event: UsageEvent, machine: string, owner: string): [string, string] | undefined {
  switch (event.kind) {
    case "settle":
      if (event.servedBy !== machine)
        return ["signer_not_server", `a settlement for ${event.servedBy} was signed by ${machine}`];
      return event.counterparty === owner
        ? undefined
        : ["signer_not_payee", `${machine} belongs to ${owner}, but the settlement pays ${event.counterparty}`];
    case "void":
      return event.account === owner || event.counterparty === owner
        ? undefined
        : ["signer_not_party", `${machine} belongs to ${owner}, not to ${event.account} or ${event.counterparty}`];
    case "earn":
      if (event.account !== owner) return notOwner(machine, owner, event.account);
      return event.servedBy === machine
        ? undefined
        : ["signer_not_server", `an earn for ${event.servedBy} was signed by ${machine}`];
    default:
      return event.account === owner ? undefined : notOwner(machine, owner, event.account);
  }
}

function notOwner(machine: string, owner: string, account: string): [string, string] {
  return ["signer_not_account_owner", `${machine} belongs to ${owner} and may not move account ${account}`];
}

function refused(reason: string): UsageVerdict {
  return { ok: false, reason };
}
