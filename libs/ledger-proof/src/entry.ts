import { hash } from "node:crypto";

/**
 * The canonical binary encoding of a ledger entry. Fixed field order, integers big-endian,
 * strings length-prefixed UTF-8. The chain hash is SHA-256 of this encoding, which includes the
 * previous entry's hash; the Merkle leaf is SHA-256(0x00 ‖ encoding). Changing any stored field
 * changes the bytes, so the hash, so every later link.
 */
export const ENTRY_MAGIC = "PLE1";
export const GENESIS_HASH = "0".repeat(64);

export const KindCode = { earn: 1, spend: 2, hold: 3, settle: 4, void: 5, adjust: 6, refund: 7, snapshot: 8 } as const;
export type RecordKind = keyof typeof KindCode;

export interface LedgerRecord {
  seq: number;
  eventId: string;
  kind: RecordKind;
  /** "" for log-level entries (snapshots). */
  account: string;
  /** Signed change to the balance, micro-credits. */
  delta: number;
  /** Signed change to the amount held, micro-credits. */
  heldDelta: number;
  /** The event this one refers to (hold for settle/void, spend for refund), or "". */
  ref: string;
  /** JSON with the event's other facts (job id, reason, snapshot root …), stored and hashed as given. */
  meta: string;
  /** SHA-256 hex of the canonical request payload; how duplicates are told from conflicts. */
  payloadHash: string;
  createdAtMs: number;
  prevHash: string;
}

/** Bytes before the length-prefixed strings: magic, version, seq, time, kind, deltas, two hashes. */
const FIXED_BYTES = 4 + 1 + 8 + 8 + 1 + 8 + 8 + 32 + 32;

export function encodeEntry(r: LedgerRecord): Buffer {
  const end = encodeIntoScratch(r, 0);
  return Buffer.from(scratch.subarray(0, end));
}

/**
 * Every append and every audit encodes each entry once to hash it; they encode into one buffer
 * reused for the whole thread (the encoding is synchronous, so no two uses overlap) instead of
 * allocating one per entry and measuring each string first.
 */
let scratch = Buffer.allocUnsafe(4096);

/** Writes the encoding of `r` into `scratch` from `at`, growing it if needed; returns the end offset. */
function encodeIntoScratch(r: LedgerRecord, at: number): number {
  const code = KindCode[r.kind];
  if (code === undefined) throw new TypeError(`unknown entry kind ${String(r.kind)}`);
  checkHex32(r.payloadHash, "payload hash");
  checkHex32(r.prevHash, "previous hash");
  // A UTF-16 code unit never takes more than 3 bytes of UTF-8: room for the longest possible encoding.
  const bound = at + FIXED_BYTES + 10 + 3 * (r.eventId.length + r.account.length + r.ref.length + r.meta.length);
  if (scratch.length < bound) scratch = Buffer.allocUnsafe(Math.max(bound, 2 * scratch.length));
  const out = scratch;
  let o = at + out.write(ENTRY_MAGIC, at, "latin1");
  o = out.writeUInt8(1, o);
  o = writeInt64(out, r.seq, o, false);
  o = writeInt64(out, r.createdAtMs, o, false);
  o = out.writeUInt8(code, o);
  o = writeInt64(out, r.delta, o, true);
  o = writeInt64(out, r.heldDelta, o, true);
  o += out.write(r.payloadHash, o, "hex");
  o += out.write(r.prevHash, o, "hex");
  o = writeStr(out, r.eventId, o, 2);
  o = writeStr(out, r.account, o, 2);
  o = writeStr(out, r.ref, o, 2);
  return writeStr(out, r.meta, o, 4);
}

export function decodeEntry(bytes: Buffer): LedgerRecord {
  if (bytes.length < 102 || bytes.toString("latin1", 0, 4) !== ENTRY_MAGIC || bytes[4] !== 1)
    throw new TypeError("not a version 1 ledger entry");
  const codeAt = 21;
  const kind = (Object.keys(KindCode) as RecordKind[]).find((k) => KindCode[k] === bytes[codeAt]);
  if (kind === undefined) throw new TypeError(`unknown entry kind code ${bytes[codeAt]}`);
  const reader = { at: 102 };
  const record: LedgerRecord = {
    seq: safe(bytes.readBigUInt64BE(5)),
    createdAtMs: safe(bytes.readBigUInt64BE(13)),
    kind,
    delta: safe(bytes.readBigInt64BE(22)),
    heldDelta: safe(bytes.readBigInt64BE(30)),
    payloadHash: bytes.subarray(38, 70).toString("hex"),
    prevHash: bytes.subarray(70, 102).toString("hex"),
    eventId: readStr(bytes, reader, 2),
    account: readStr(bytes, reader, 2),
    ref: readStr(bytes, reader, 2),
    meta: readStr(bytes, reader, 4),
  };
  if (reader.at !== bytes.length) throw new TypeError("trailing bytes after a ledger entry");
  return record;
}

/** The chain hash of an entry (hex). */
export function entryHash(r: LedgerRecord): string {
  const end = encodeIntoScratch(r, 0);
  return hash("sha256", scratch.subarray(0, end), "hex");
}

/** leafHash(encodeEntry(r)), SHA-256(0x00 ‖ entry), without the two copies. */
export function entryLeafHash(r: LedgerRecord): Buffer {
  const end = encodeIntoScratch(r, 1);
  scratch[0] = 0x00;
  return hash("sha256", scratch.subarray(0, end), "buffer");
}

/** A balance snapshot leaf: (account, balance, as-of log size), fixed encoding. */
export function encodeBalanceLeaf(account: string, balance: number, asOfSize: number): Buffer {
  return balanceLeafInput(account, balance, asOfSize, 0);
}

/** The balance leaf's Merkle leaf hash, SHA-256(0x00 ‖ leaf), built in one buffer (snapshots hash millions). */
export function balanceLeafHash(account: string, balance: number, asOfSize: number): Buffer {
  const input = balanceLeafInput(account, balance, asOfSize, 1);
  input[0] = 0x00;
  return hash("sha256", input, "buffer");
}

function balanceLeafInput(account: string, balance: number, asOfSize: number, offset: number): Buffer {
  const out = Buffer.allocUnsafe(offset + balanceLeafBytes(account));
  writeBalanceLeaf(out, offset, account, balance, asOfSize);
  return out;
}

/** Encoded size of a balance leaf (without the Merkle 0x00 prefix). */
export function balanceLeafBytes(account: string): number {
  const nameBytes = Buffer.byteLength(account, "utf8");
  if (nameBytes > 0xffff) throw new RangeError("account name is too long");
  return 4 + 2 + nameBytes + 16;
}

/** Writes the balance leaf encoding at `at` (so many leaves can share one buffer); returns the end offset. */
export function writeBalanceLeaf(out: Buffer, at: number, account: string, balance: number, asOfSize: number): number {
  if (!Number.isSafeInteger(balance) || !Number.isSafeInteger(asOfSize) || asOfSize < 0)
    throw new RangeError("balance leaf needs safe integers");
  let o = at + out.write("PLB1", at, "latin1");
  const nameAt = o + 2;
  const nameBytes = out.write(account, nameAt, "utf8");
  o = out.writeUInt16BE(nameBytes, o) + nameBytes;
  // 64-bit big-endian without BigInt: high word (signed for the balance) then low word.
  o = out.writeInt32BE(Math.floor(balance / 2 ** 32), o);
  o = out.writeUInt32BE(balance - Math.floor(balance / 2 ** 32) * 2 ** 32, o);
  o = out.writeUInt32BE(Math.floor(asOfSize / 2 ** 32), o);
  return out.writeUInt32BE(asOfSize - Math.floor(asOfSize / 2 ** 32) * 2 ** 32, o);
}

/** What a snapshot entry's meta holds. */
export interface SnapshotMeta {
  asOfSize: number;
  accounts: number;
  root: string;
}

export function snapshotMeta(m: SnapshotMeta): string {
  return JSON.stringify({ asOfSize: m.asOfSize, accounts: m.accounts, root: m.root });
}

export function parseSnapshotMeta(meta: string): SnapshotMeta {
  const m = JSON.parse(meta) as Partial<SnapshotMeta>;
  if (
    !Number.isSafeInteger(m.asOfSize) ||
    !Number.isSafeInteger(m.accounts) ||
    typeof m.root !== "string" ||
    !/^[0-9a-f]{64}$/.test(m.root)
  ) {
    throw new TypeError("snapshot entry meta is not {asOfSize, accounts, root}");
  }
  return m as SnapshotMeta;
}

/**
 * Byte order of UTF-8, which is what the snapshot tree is sorted by. For ASCII names (every
 * OwnerName is) UTF-16 code-unit order is the same order, and a million-account sort cannot
 * afford two allocations per comparison.
 */
export function compareAccounts(a: string, b: string): number {
  if (isAscii(a) && isAscii(b)) return compareAscii(a, b);
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function compareAscii(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isAscii(s: string): boolean {
  return ASCII.test(s);
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * Writes a string field (length prefix, then UTF-8) at `at`, refused when it does not fit its prefix; returns the end
 * offset.
 */
function writeStr(out: Buffer, s: string, at: number, prefixBytes: 2 | 4): number {
  const n = out.write(s, at + prefixBytes, "utf8");
  if (n > (prefixBytes === 2 ? 0xffff : 0xffffffff))
    throw new RangeError(`string of ${n} bytes does not fit a ${prefixBytes}-byte length`);
  if (prefixBytes === 2) out.writeUInt16BE(n, at);
  else out.writeUInt32BE(n, at);
  return at + prefixBytes + n;
}

/** A 64-bit big-endian integer without BigInt: high word (signed when `signed`) then low word. */
function writeInt64(out: Buffer, v: number, at: number, signed: boolean): number {
  if (!Number.isSafeInteger(v) || (!signed && v < 0))
    throw new RangeError(`${v} is not a ${signed ? "" : "non-negative "}safe integer`);
  const high = Math.floor(v / 2 ** 32);
  const o = signed ? out.writeInt32BE(high, at) : out.writeUInt32BE(high, at);
  return out.writeUInt32BE(v - high * 2 ** 32, o);
}

function readStr(bytes: Buffer, reader: { at: number }, prefixBytes: 2 | 4): string {
  if (reader.at + prefixBytes > bytes.length) throw new TypeError("ledger entry is truncated");
  const len = prefixBytes === 2 ? bytes.readUInt16BE(reader.at) : bytes.readUInt32BE(reader.at);
  const start = reader.at + prefixBytes;
  if (start + len > bytes.length) throw new TypeError("ledger entry is truncated");
  reader.at = start + len;
  return bytes.toString("utf8", start, start + len);
}

const HEX32 = /^[0-9a-f]{64}$/;

function checkHex32(h: string, what: string): void {
  if (!HEX32.test(h)) throw new TypeError(`${what} is not 32 bytes of lower-case hex`);
}

function safe(n: bigint): number {
  const v = Number(n);
  if (!Number.isSafeInteger(v)) throw new RangeError(`integer ${n} is beyond 2^53`);
  return v;
}
