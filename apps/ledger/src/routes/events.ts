import { LedgerEventRequest, LedgerLimits, PotluckHttpError, zodHook, type EventOutcome } from "@potluck/protocol";
import { limitBody } from "@potluck/service";
import type { Context } from "hono";
import { Hono } from "hono";
import { validator } from "hono/validator";
import { grantRefusal } from "../auth/admin.js";
import { requireWriter, type WriteAuth, type Writer, type WriterVariables } from "../auth/writers.js";
import type { AppendOutcome } from "../ledger/append.js";
import { fromRequest } from "../ledger/events.js";
import type { Ledger } from "../ledger/service.js";

/** The HTTP write path: the same events JetStream carries, one per request, from an authenticated writer. */
export function eventRoutes(ledger: Ledger, auth: WriteAuth | undefined) {
  return new Hono<{ Variables: WriterVariables }>().post(
    "/",
    limitBody({ bytesMax: LedgerLimits.eventBodyBytesMax }),
    requireWriter(auth),
    validator("json", zodHook(LedgerEventRequest)),
    async (c) => {
      const req = c.req.valid("json");
      const writer = c.get("writer");
      mayWrite(writer, req, auth?.adminKey !== undefined);
      // A machine's settle or void is judged against its hold's parties (rules.ts): who wrote it goes along.
      const ev = writer.kind === "machine" ? { ...fromRequest(req), actor: writer.owner } : fromRequest(req);
      const [outcome] = await ledger.append([ev]);
      const body = answer(outcome);
      return c.json(body, body.status === "applied" ? 201 : 200);
    },
  );
}

/** An applied or duplicate event is an answer; a refusal is a 4xx naming the field and the reason. */
export function answer(outcome: AppendOutcome | undefined): EventOutcome {
  if (outcome === undefined) throw new Error("append returned no outcome");
  if (outcome.status === "applied")
    return { eventId: outcome.eventId, status: "applied", seq: outcome.seq, hash: outcome.hash };
  if (outcome.status === "duplicate") return { eventId: outcome.eventId, status: "already_applied", seq: outcome.seq };
  const r = outcome.refusal;
  throw new PotluckHttpError(r.status, r.code, r.message, r.field);
}

/**
 * Nobody posts a bare earn: credits reach an account only as the pair of a spend or settlement
 * that pays it, or as the operator's adjust. A machine spends and holds from its own owner's
 * account; it settles or voids a hold it is a party to (checked against the hold, rules.ts);
 * grants (adjust) are the household admin's, signed with the hub's key (auth/admin.ts), and
 * refunds the operator's. Anything else is a 4xx naming the field,
 * refused before the database is touched.
 */
function mayWrite(writer: Writer, req: LedgerEventRequest, adminKnown: boolean): void {
  if (req.kind === "earn")
    throw new PotluckHttpError(
      422,
      "unpaired_earn",
      `an earn is never accepted alone: credits reach ${req.account} only as the pair of a spend or settlement that pays it, or as the operator's adjust`,
      "kind",
    );
  if (req.kind === "adjust") {
    if (writer.kind === "admin") return;
    throw new PotluckHttpError(
      403,
      "admin_signature_required",
      grantRefusal(writer.kind === "token" ? "the write token" : `machine ${writer.machine}`, adminKnown),
      "kind",
    );
  }
  if (writer.kind === "token" || writer.kind === "admin") return;
  if (req.kind === "refund")
    throw new PotluckHttpError(
      403,
      "forbidden",
      `machine ${writer.machine} may not post ${req.kind} events; they are the operator's (write token)`,
      "kind",
    );
  if (req.kind === "settle" || req.kind === "void") return;
  if (req.account !== writer.owner)
    throw new PotluckHttpError(
      403,
      "forbidden",
      `machine ${writer.machine} meters ${writer.owner}'s account, not ${req.account}`,
      "account",
    );
}

/** For writes only the operator may make (signing a checkpoint, taking a snapshot). */
export function operatorOnly(c: Context<{ Variables: WriterVariables }>, what: string): void {
  const writer = c.get("writer");
  if (writer.kind === "machine")
    throw new PotluckHttpError(
      403,
      "forbidden",
      `${what} needs the ledger's write token; machine ${writer.machine} may only post its own owner's events`,
      "authorization",
    );
}
