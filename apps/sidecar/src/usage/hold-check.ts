import { verifyDurableMessage, type KeyLookup, type ReceivedMessage } from "@potluck/peer";
import { UsageEvent } from "@potluck/protocol";

/** What a requester's peer call claims: the hold it placed, where it sits on the usage stream, and for whom. */
export interface HoldClaim {
  eventId: string;
  /** The hold's sequence number on the usage stream (JetStream's acknowledgement gave it). */
  seq: number;
  jobId: string;
  /** The verified signer of the peer call, and its owner on the roster: the hold's signer and account. */
  caller: string;
  callerOwner: string;
  /** This machine's owner, whom the hold must pay. */
  payee: string;
}

export type HoldVerdict =
  { ok: true; amount: number } | { ok: false; status: 402 | 503; code: string; message: string };

/** Checks a hold before its job runs; one per sidecar (NatsParts owns the NATS-backed one). */
export interface HoldChecker {
  check(claim: HoldClaim): Promise<HoldVerdict>;
}

/**
 * A serving machine does not take a requester's word for its hold: it reads the hold from the
 * usage stream at the sequence the requester gives (one JetStream direct read, done while the
 * model starts on the prompt) and checks that it is a hold for this job, on the caller's owner's
 * account, paying this machine's owner, signed by the calling machine itself. A made-up or
 * foreign hold id is a 402 before the first token. What it cannot see is the ledger's verdict
 * (a hold the ledger will refuse for want of credits): that job is served on credit, and its
 * settlement is refused; the README says so.
 */
export function streamHoldChecker(options: {
  /** The message at `seq` on the usage stream, or undefined when there is none. Throws when NATS fails. */
  read: (seq: number) => Promise<ReceivedMessage | undefined>;
  lookupKey: KeyLookup;
}): HoldChecker {
  return {
    async check(claim) {
      let message: ReceivedMessage | undefined;
      try {
        message = await options.read(claim.seq);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        return refuse(
          503,
          "hold_unverifiable",
          `the usage stream could not be read to check hold ${claim.eventId}: ${why}`,
        );
      }
      if (message === undefined)
        return refuse(402, "hold_not_found", `no hold at sequence ${claim.seq} of the usage stream`);
      const event = parseEvent(message.data);
      const wrong = mismatch(event, claim);
      if (wrong !== undefined) return refuse(402, "hold_not_found", `the message at sequence ${claim.seq} ${wrong}`);
      const signed = await verifyDurableMessage(message, { lookupKey: options.lookupKey });
      if (!signed.ok || signed.machine !== claim.caller)
        return refuse(
          402,
          "hold_not_signed",
          `hold ${claim.eventId} is not signed by ${claim.caller}${signed.ok ? ` (signed by ${signed.machine})` : ` (${signed.message})`}`,
        );
      return { ok: true, amount: (event as UsageEvent).amount };
    },
  };
}

/** A stand-in for a machine without NATS: it can neither read a hold nor settle one, so it serves no other owner. */
export const noHoldChecker: HoldChecker = {
  check: async (claim) =>
    refuse(503, "hold_unverifiable", `this machine has no NATS connection, so it cannot check hold ${claim.eventId}`),
};

function parseEvent(data: Uint8Array): UsageEvent | undefined {
  try {
    const parsed = UsageEvent.safeParse(JSON.parse(new TextDecoder().decode(data)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Why the event is not the claimed hold, or undefined when it is. */
function mismatch(event: UsageEvent | undefined, claim: HoldClaim): string | undefined {
  if (event === undefined) return "is not a usage event";
  if (event.kind !== "hold" || event.eventId !== claim.eventId) return `is not hold ${claim.eventId}`;
  if (event.jobId !== claim.jobId) return `holds for job ${event.jobId}, not ${claim.jobId}`;
  if (event.account !== claim.callerOwner) return `is on ${event.account}'s account, not ${claim.callerOwner}'s`;
  if (event.counterparty !== claim.payee) return `pays ${event.counterparty}, not ${claim.payee}`;
  return undefined;
}

function refuse(status: 402 | 503, code: string, message: string): HoldVerdict {
  return { ok: false, status, code, message };
}
