import { LedgerAmounts } from "@potluck/protocol";
import type { IncomingEvent } from "./events.js";

/** Why an event was refused: a stable code, the HTTP status, the input field it is about. */
export interface Refusal {
  code: string;
  status: 403 | 404 | 409 | 422;
  field: string;
  message: string;
}

export interface AccountState {
  balance: number;
  held: number;
}

/** What is known about an event another event refers to (a hold, or a spend being refunded). */
export interface RefState {
  kind: string;
  account: string;
  /** Amount held (hold) or spent (spend/settle), positive. */
  amount: number;
  /** Hold already settled or voided. */
  closed: boolean;
  /** Sum already refunded against a spend. */
  refunded: number;
  /** Who the hold, spend or settlement pays (the server's owner), or "" when the entry names nobody. */
  payee: string;
}

/** The state an event is judged against; the caller loads it under the head lock. */
export interface RuleState {
  account(name: string): AccountState | undefined;
  ref(eventId: string): RefState | undefined;
}

/**
 * What an accepted event does: the change to its own account and, for a movement of credits,
 * the opposite change to the other party's (`pair`), written as the next entry in the same
 * transaction. delta + pair.delta = 0 for every event but `adjust`.
 */
export type Effect =
  | { ok: true; delta: number; heldDelta: number; pair?: { account: string; delta: number } }
  | { ok: false; refusal: Refusal };

/**
 * The meter's rules. Credits move only from one account to another (a spend or settlement pays
 * its payee, a refund takes back from the payee what it returns), so the sum over all accounts
 * changes only through `adjust`, the operator's grant. An earn never comes alone: it is written by
 * the ledger as the pair of a spend or a settlement, and refused when posted. A spend, hold or
 * negative adjust may not take the available balance (balance − held) below zero, nor any
 * credit take a balance above LedgerAmounts.balanceMicroMax; settle and void close a hold once,
 * a settlement pays no more than its hold, and only the hold's payee settles it.
 */
export function judge(ev: IncomingEvent, state: RuleState): Effect {
  if (Math.abs(ev.amount) > LedgerAmounts.eventMicroMax)
    return refuse(
      "amount_limit",
      422,
      "amount",
      `${ev.kind} of ${ev.amount} exceeds the per-event maximum of ${LedgerAmounts.eventMicroMax} micro-credits`,
    );
  if (ev.kind === "earn")
    return refuse(
      "unpaired_earn",
      422,
      "kind",
      `an earn is never accepted alone: credits move only as a spend or settlement that pays ${ev.account}, or as the operator's adjust`,
    );
  // A settlement or void is judged by its hold, which names the account.
  if (ev.kind === "settle" || ev.kind === "void") return closeHold(ev, state, state.ref(ev.ref));
  const acct = state.account(ev.account);
  if (acct === undefined && !(ev.kind === "adjust" && ev.amount > 0))
    return refuse("unknown_account", 404, "account", `unknown account ${ev.account}: it has never been credited`);
  const { balance, held } = acct ?? { balance: 0, held: 0 };
  const available = balance - held;
  switch (ev.kind) {
    case "spend":
      return ev.amount > available ? overdraw(ev, available) : pay(state, ev.payee, ev.amount, -ev.amount, 0);
    case "hold":
      return ev.amount > available ? overdraw(ev, available) : ok(0, ev.amount);
    case "adjust":
      if (-ev.amount > available)
        return refuse(
          "overdraw",
          409,
          "delta",
          `adjust of ${ev.amount} would overdraw ${ev.account}: ${available} available`,
        );
      return balance + ev.amount > LedgerAmounts.balanceMicroMax
        ? overfill(ev.account, balance + ev.amount, "delta")
        : ok(ev.amount, 0);
    case "refund":
      return refund(ev, state, state.ref(ev.ref));
  }
}

function closeHold(ev: IncomingEvent, state: RuleState, hold: RefState | undefined): Effect {
  if (hold === undefined || hold.kind !== "hold" || hold.account !== ev.account) {
    return refuse("unknown_hold", 404, "holdEventId", `no hold ${ev.ref} on account ${ev.account}`);
  }
  // Only the payee's machine settles (it knows what it served); either side may void (a dispute).
  if (ev.actor !== undefined && ev.kind === "settle" && ev.actor !== hold.payee)
    return refuse(
      "not_payee",
      403,
      "holdEventId",
      `hold ${ev.ref} pays ${hold.payee || "nobody"}; a machine of ${ev.actor} may not settle it`,
    );
  if (ev.actor !== undefined && ev.actor !== hold.payee && ev.actor !== hold.account)
    return refuse(
      "not_party",
      403,
      "holdEventId",
      `hold ${ev.ref} is between ${hold.account} and ${hold.payee}; a machine of ${ev.actor} may not void it`,
    );
  if (hold.closed) return refuse("hold_closed", 409, "holdEventId", `hold ${ev.ref} is already settled or voided`);
  if (ev.kind === "void") return ok(0, -hold.amount);
  if (ev.amount > hold.amount)
    return refuse(
      "settle_exceeds_hold",
      422,
      "amount",
      `settle of ${ev.amount} exceeds hold ${ev.ref} of ${hold.amount}`,
    );
  if (hold.payee === "")
    return refuse(
      "unknown_payee",
      422,
      "holdEventId",
      `hold ${ev.ref} names no payee, so settling it would pay nobody; void it`,
    );
  return pay(state, hold.payee, ev.amount, -ev.amount, -hold.amount);
}

function refund(ev: IncomingEvent, state: RuleState, spent: RefState | undefined): Effect {
  if (spent === undefined || (spent.kind !== "spend" && spent.kind !== "settle") || spent.account !== ev.account) {
    return refuse("unknown_spend", 404, "refundsEventId", `no spend or settle ${ev.ref} on account ${ev.account}`);
  }
  const left = spent.amount - spent.refunded;
  if (ev.amount > left)
    return refuse(
      "refund_exceeds_spend",
      422,
      "amount",
      `refund of ${ev.amount} exceeds the ${left} still refundable on ${ev.ref}`,
    );
  if (spent.payee === "")
    return refuse(
      "unknown_payee",
      422,
      "refundsEventId",
      `${ev.ref} names no payee to take the refund back from; use adjust`,
    );
  const payee = state.account(spent.payee) ?? { balance: 0, held: 0 };
  if (ev.amount > payee.balance - payee.held)
    return refuse(
      "overdraw",
      409,
      "amount",
      `refund of ${ev.amount} would overdraw the payee ${spent.payee}: ${payee.balance - payee.held} available`,
    );
  const acct = state.account(ev.account) ?? { balance: 0, held: 0 };
  if (acct.balance + ev.amount > LedgerAmounts.balanceMicroMax)
    return overfill(ev.account, acct.balance + ev.amount, "amount");
  return { ok: true, delta: ev.amount, heldDelta: 0, pair: { account: spent.payee, delta: -ev.amount } };
}

/**
 * The payer's change (delta, heldDelta) with its pair: `amount` credited to `payee`, unless that takes it above the
 * maximum.
 */
function pay(state: RuleState, payee: string, amount: number, delta: number, heldDelta: number): Effect {
  if (payee === "")
    return refuse(
      "unknown_payee",
      422,
      "payee",
      "a payment names no payee: credits only move from one account to another",
    );
  const to = state.account(payee) ?? { balance: 0, held: 0 };
  if (to.balance + amount > LedgerAmounts.balanceMicroMax) return overfill(payee, to.balance + amount, "amount");
  return { ok: true, delta, heldDelta, pair: { account: payee, delta: amount } };
}

function overfill(account: string, wouldBe: number, field: string): Effect {
  return refuse(
    "balance_limit",
    422,
    field,
    `${account} would hold ${wouldBe} micro-credits, above the maximum of ${LedgerAmounts.balanceMicroMax}`,
  );
}

function overdraw(ev: IncomingEvent, available: number): Effect {
  return refuse(
    "overdraw",
    409,
    "amount",
    `${ev.kind} of ${ev.amount} would overdraw ${ev.account}: ${available} available`,
  );
}

function ok(delta: number, heldDelta: number): Effect {
  return { ok: true, delta, heldDelta };
}

function refuse(code: string, status: Refusal["status"], field: string, message: string): Effect {
  return { ok: false, refusal: { code, status, field, message } };
}
