import { LedgerEventRequest, LedgerLimits, PotluckHttpError, zodHook, type EventOutcome } from "@potluck/protocol";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { validator } from "hono/validator";
import type { AppendOutcome } from "../ledger/append.js";
import { fromRequest } from "../ledger/events.js";
import type { Ledger } from "../ledger/service.js";

/** The HTTP write path: the same events JetStream carries, one per request. */
export function eventRoutes(ledger: Ledger) {
  return new Hono().post(
    "/",
    bodyLimit({ maxSize: LedgerLimits.eventBodyBytesMax, onError: () => { throw new PotluckHttpError(413, "body_too_large", `event body is larger than ${LedgerLimits.eventBodyBytesMax} bytes`); } }),
    validator("json", zodHook(LedgerEventRequest)),
    async (c) => {
      const [outcome] = await ledger.append([fromRequest(c.req.valid("json"))]);
      const body = answer(outcome);
      return c.json(body, body.status === "applied" ? 201 : 200);
    },
  );
}

/** An applied or duplicate event is an answer; a refusal is a 4xx naming the field and the reason. */
export function answer(outcome: AppendOutcome | undefined): EventOutcome {
  if (outcome === undefined) throw new Error("append returned no outcome");
  if (outcome.status === "applied") return { eventId: outcome.eventId, status: "applied", seq: outcome.seq, hash: outcome.hash };
  if (outcome.status === "duplicate") return { eventId: outcome.eventId, status: "already_applied", seq: outcome.seq };
  const r = outcome.refusal;
  throw new PotluckHttpError(r.status, r.code, r.message, r.field);
}
