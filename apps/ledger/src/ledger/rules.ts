import type { IncomingEvent } from "./events.js";

/** Why an event was refused: a stable code, the HTTP status, the input field it is about. */
export interface Refusal {
  code: string;
  status: 404 | 409 | 422;
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
}

/** The state an event is judged against; the caller loads it under the head lock. */
export interface RuleState {
  account(name: string): AccountState | undefined;
  ref(eventId: string): RefState | undefined;
}

export type Effect = { ok: true; delta: number; heldDelta: number } | { ok: false; refusal: Refusal };

/**
 * The meter's rules. Credits never move between accounts; a spend, hold or negative adjust may
 * not take the available balance (balance − held) below zero; settle and void close a hold once;
 * a refund returns at most what the referenced spend took.
 */
export function judge(ev: IncomingEvent, state: RuleState): Effect {
  const acct = state.account(ev.account);
  if (ev.kind === "earn") return ok(ev.amount, 0);
  if (acct === undefined) return refuse("unknown_account", 404, "account", `unknown account ${ev.account}: it has never earned credits`);
  const available = acct.balance - acct.held;
  switch (ev.kind) {
    case "spend":
      return ev.amount > available ? overdraw(ev, available) : ok(-ev.amount, 0);
    case "hold":
      return ev.amount > available ? overdraw(ev, available) : ok(0, ev.amount);
    case "adjust":
      return -ev.amount > available ? refuse("overdraw", 409, "delta", `adjust of ${ev.amount} would overdraw ${ev.account}: ${available} available`) : ok(ev.amount, 0);
    case "settle":
    case "void":
      return closeHold(ev, state.ref(ev.ref));
    case "refund":
      return refund(ev, state.ref(ev.ref));
  }
}

function closeHold(ev: IncomingEvent, hold: RefState | undefined): Effect {
  if (hold === undefined || hold.kind !== "hold" || hold.account !== ev.account) {
    return refuse("unknown_hold", 404, "holdEventId", `no hold ${ev.ref} on account ${ev.account}`);
  }
  if (hold.closed) return refuse("hold_closed", 409, "holdEventId", `hold ${ev.ref} is already settled or voided`);
  if (ev.kind === "void") return ok(0, -hold.amount);
  if (ev.amount > hold.amount) return refuse("settle_exceeds_hold", 422, "amount", `settle of ${ev.amount} exceeds hold ${ev.ref} of ${hold.amount}`);
  return ok(-ev.amount, -hold.amount);
}

function refund(ev: IncomingEvent, spent: RefState | undefined): Effect {
  if (spent === undefined || (spent.kind !== "spend" && spent.kind !== "settle") || spent.account !== ev.account) {
    return refuse("unknown_spend", 404, "refundsEventId", `no spend or settle ${ev.ref} on account ${ev.account}`);
  }
  const left = spent.amount - spent.refunded;
  if (ev.amount > left) return refuse("refund_exceeds_spend", 422, "amount", `refund of ${ev.amount} exceeds the ${left} still refundable on ${ev.ref}`);
  return ok(ev.amount, 0);
}

function overdraw(ev: IncomingEvent, available: number): Effect {
  return refuse("overdraw", 409, "amount", `${ev.kind} of ${ev.amount} would overdraw ${ev.account}: ${available} available`);
}

function ok(delta: number, heldDelta: number): Effect {
  return { ok: true, delta, heldDelta };
}

function refuse(code: string, status: Refusal["status"], field: string, message: string): Effect {
  return { ok: false, refusal: { code, status, field, message } };
}
