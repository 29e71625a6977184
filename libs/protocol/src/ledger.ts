import { z } from "zod";
import { ClientId, IsoTime, MachineName, OwnerName } from "./common.js";
import { flatCheck } from "./flat-check.js";

/** 1 credit = 1 normalized A100-minute = 1,000,000 micro-credits; amounts are integers of these. */
export const MICRO_CREDITS_PER_CREDIT = 1_000_000;

/**
 * Named maxima on amounts, in micro-credits. One event moves at most `eventMicroMax` (10,000
 * credits: thousands of the largest jobs a household serves); an account holds at most
 * `balanceMicroMax` (10^9 credits). Both sums stay far below 2^53, so no balance can overflow a
 * double or a bigint column, whatever the order of events. The ledger checks them again before writing.
 */
export const LedgerAmounts = {
  eventMicroMax: 10_000 * MICRO_CREDITS_PER_CREDIT,
  balanceMicroMax: 1_000_000_000 * MICRO_CREDITS_PER_CREDIT,
} as const;

const Amount = z
  .number()
  .int("expected an integer number of micro-credits")
  .positive("expected a positive amount")
  .max(LedgerAmounts.eventMicroMax, `expected at most ${LedgerAmounts.eventMicroMax} micro-credits per event`);
const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, "expected 32 bytes as lower-case hex");

/**
 * A job between owners, on JetStream, signed by the machine that reports it. The requester's
 * machine places a `hold` before the job (account: its owner, counterparty: the server's owner);
 * the server's machine `settle`s it after the stream; either side may `void` it; the requester
 * may `refund` a settlement it disputes. `spend` (a direct payment) and `earn` (refused as
 * unpaired) are the older shapes.
 */
export const UsageEvent = z.object({
  eventId: ClientId,
  jobId: ClientId,
  /** The account whose credits are held or paid: the requester's owner (earn: the server's). */
  kind: z.enum(["earn", "spend", "hold", "settle", "void", "refund"]),
  account: OwnerName,
  counterparty: OwnerName,
  servedBy: MachineName,
  model: z.string().min(1).max(256),
  tokens: z.number().int().nonnegative(),
  /** Normalized compute in micro-credits (A100-microminutes). */
  amount: Amount,
  at: IsoTime,
  /** settle, void: the hold's event id; refund: the settlement's. Absent for the other kinds. */
  ref: ClientId.optional(),
});
export type UsageEvent = z.infer<typeof UsageEvent>;

/** check(UsageEvent, input) with the same verdict and data, cheaper: the ledger runs it on every ingested event. */
export const checkUsageEvent = flatCheck(UsageEvent);

export const EntryKind = z.enum(["earn", "spend", "hold", "settle", "void", "adjust", "refund", "snapshot"]);
export type EntryKind = z.infer<typeof EntryKind>;

/**
 * The HTTP write path: one ledger event. Credits move only between two accounts at once: a spend
 * or a settlement debits `account` and credits the payee in one entry pair, so only `adjust` (the
 * operator's grant) changes the sum over all accounts. `earn` is kept in the union so that a bare
 * earn is refused by name (`unpaired_earn`), not as a malformed body.
 */
export const LedgerEventRequest = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("earn"),
    eventId: ClientId,
    account: OwnerName,
    amount: Amount,
    jobId: ClientId.optional(),
  }),
  /** A direct payment from `account` (the requester's owner) to `payee` (the server's owner). */
  z.object({
    kind: z.literal("spend"),
    eventId: ClientId,
    account: OwnerName,
    payee: OwnerName,
    amount: Amount,
    jobId: ClientId.optional(),
  }),
  /**
   * The requester's machine reserves at most `amount` for a job `payee`'s machine serves; the payee settles for no
   * more.
   */
  z.object({
    kind: z.literal("hold"),
    eventId: ClientId,
    account: OwnerName,
    payee: OwnerName,
    amount: Amount,
    jobId: ClientId,
  }),
  z.object({ kind: z.literal("settle"), eventId: ClientId, account: OwnerName, holdEventId: ClientId, amount: Amount }),
  z.object({ kind: z.literal("void"), eventId: ClientId, account: OwnerName, holdEventId: ClientId }),
  z.object({
    kind: z.literal("adjust"),
    eventId: ClientId,
    account: OwnerName,
    delta: z
      .number()
      .int()
      .min(-LedgerAmounts.eventMicroMax)
      .max(LedgerAmounts.eventMicroMax)
      .refine((n) => n !== 0, "expected a non-zero integer"),
    reason: z.string().min(1).max(512),
  }),
  z.object({
    kind: z.literal("refund"),
    eventId: ClientId,
    account: OwnerName,
    amount: Amount,
    refundsEventId: ClientId,
    reason: z.string().min(1).max(512),
  }),
]);
export type LedgerEventRequest = z.infer<typeof LedgerEventRequest>;

/** One entry as the ledger's API returns it: every stored field, all of them covered by `hash`. */
export const LedgerEntry = z.object({
  seq: z.number().int().nonnegative(),
  eventId: z.string(),
  kind: EntryKind,
  /** "" for log-level entries (snapshots). */
  account: z.string(),
  /** Signed change to the account's balance in micro-credits. */
  delta: z.number().int(),
  /** Signed change to the amount held in micro-credits. */
  heldDelta: z.number().int(),
  /** The hold (settle, void) or spend (refund) this entry refers to, or "". */
  ref: z.string(),
  /** JSON text of the event's other facts (job id, reason, snapshot root …), hashed as stored. */
  meta: z.string(),
  payloadHash: Hex32,
  createdAtMs: z.number().int().nonnegative(),
  prevHash: Hex32,
  hash: Hex32,
});
export type LedgerEntry = z.infer<typeof LedgerEntry>;

export const Balance = z.object({
  account: OwnerName,
  balance: z.number().int(),
  held: z.number().int().nonnegative(),
  asOfSeq: z.number().int(),
});
export type Balance = z.infer<typeof Balance>;

/** A C2SP tlog-checkpoint signed note, with its parsed body for convenience. */
export const Checkpoint = z.object({
  origin: z.string().min(1),
  size: z.number().int().nonnegative(),
  /** base64 of the 32-byte root hash, as in the note body. */
  rootHash: z.string(),
  note: z.string(),
});
export type Checkpoint = z.infer<typeof Checkpoint>;

const HashList = z.array(Hex32).max(64);

/**
 * Everything a member needs to check their balance offline with the log's public key: the balance
 * leaf's path to a snapshot root, the snapshot entry's path to a signed checkpoint's root, the
 * checkpoint itself (a signed note), and what anchors said about that checkpoint. Hashes are hex.
 */
export const ProofBundle = z.object({
  version: z.literal(1),
  account: OwnerName,
  balance: z.number().int(),
  snapshot: z.object({
    seq: z.number().int().nonnegative(),
    asOfSize: z.number().int().nonnegative(),
    root: Hex32,
    leafIndex: z.number().int().nonnegative(),
    size: z.number().int().positive(),
    proof: HashList,
  }),
  /** `entry` is the snapshot entry's canonical encoding in base64 (its Merkle leaf is SHA-256(0x00 ‖ entry)). */
  inclusion: z.object({
    leafIndex: z.number().int().nonnegative(),
    treeSize: z.number().int().positive(),
    proof: HashList,
    entry: z.string().max(8192),
  }),
  checkpoint: z.string().max(65_536),
  /** Receipts per anchor kind: "witness" is the checkpoint cosigned by a witness; "file" a log line. */
  anchors: z.array(z.object({ kind: z.string().max(64), receipt: z.string().max(65_536) })).max(16),
});
export type ProofBundle = z.infer<typeof ProofBundle>;

/** Bounds on the ledger's HTTP reads and writes. */
export const LedgerLimits = {
  entriesPageMax: 500,
  balancesPageMax: 1000,
  eventBodyBytesMax: 16 * 1024,
  listPageMax: 500,
} as const;

/**
 * Who signs admin grants (`adjust`): the household admin, with the hub's Ed25519 signing key (the
 * key every roster answer is signed with, DATA_DIR/coordinator/signing-ed25519.pem on the hub).
 * The signer name is not a valid machine name, so no roster machine can ever be looked up as it.
 */
export const LedgerAdmin = { signer: "admin@hub" } as const;

/** Pages of the operator's lists (admin grants, parked events): newest first, before an id or sequence number. */
export const ListQuery = z.object({
  before: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).max(LedgerLimits.listPageMax).default(100),
});

export const AccountParam = z.object({ account: OwnerName });
export const EntriesQuery = z.object({
  /** Entries with a sequence number below this (newest first); omit for the newest. */
  before: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).max(LedgerLimits.entriesPageMax).default(100),
});
export const BalancesQuery = z.object({
  after: z.string().max(63).default(""),
  limit: z.coerce.number().int().min(1).max(LedgerLimits.balancesPageMax).default(100),
});
export const ConsistencyQuery = z.object({
  from: z.coerce.number().int().positive(),
  to: z.coerce.number().int().positive(),
});
export const SizeParam = z.object({ size: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) });

/** The answer to a write: applied now, or applied earlier with the same payload. */
export const EventOutcome = z.object({
  eventId: z.string(),
  status: z.enum(["applied", "already_applied"]),
  seq: z.number().int().nonnegative(),
  hash: Hex32.optional(),
});
export type EventOutcome = z.infer<typeof EventOutcome>;

/** A log asking a witness to cosign `checkpoint`, proving it extends the witness's last one (`oldSize`). */
export const WitnessAddCheckpoint = z.object({
  oldSize: z.number().int().nonnegative(),
  proof: HashList,
  checkpoint: z.string().min(1).max(65_536),
});
export type WitnessAddCheckpoint = z.infer<typeof WitnessAddCheckpoint>;
