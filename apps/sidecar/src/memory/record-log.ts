import {
  closeSync,
  createReadStream,
  existsSync,
  fdatasyncSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { crc32 } from "node:zlib";
import { MemoryRecord } from "@potluck/protocol";

/**
 * The memory store on disk: one append-only file of checksummed JSON lines (`<crc32> <json>`),
 * each a put, a delete or a batch of access-time touches, replayed at start-up and compacted into
 * a fresh snapshot when dead lines outnumber live ones. Why not a database: the store is a few
 * MB to a few hundred MB written by one process, every read is served from memory, and a
 * crash can at worst tear the last line, which the checksum catches and start-up reports.
 */
export interface StoredRecord extends MemoryRecord {
  vector: Float32Array;
}

export interface LogReplay {
  records: Map<string, StoredRecord>;
  corrupt: CorruptReport;
  /** Lines that no longer describe live state; drives compaction. */
  deadLines: number;
}

export interface CorruptReport {
  lines: number;
  /** The first few, as "line N: reason", for the status API and the start-up log. */
  samples: string[];
}

type LogOp =
  { t: "put"; r: MemoryRecord & { v: string } } | { t: "del"; id: string } | { t: "touch"; at: string; ids: string[] };

const corruptSamplesMax = 10;
/** Compaction waits until at least this many lines are dead, so small stores never churn. */
const compactDeadLinesMin = 1_000;
/** A single touch line names at most this many ids, keeping lines short. */
export const touchIdsPerLineMax = 1_000;

export class RecordLog {
  private fd: number;
  private readonly path: string;

  private constructor(readonly dir: string) {
    this.path = join(dir, "memory.log");
    this.fd = openSync(this.path, "a");
  }

  /** Opens (creating) the log in `dir`, replays it, and compacts it when mostly dead. */
  static async open(dir: string): Promise<{ log: RecordLog; replay: LogReplay }> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, "memory.log");
    const replay = existsSync(path) ? await replayFile(path) : emptyReplay();
    const log = new RecordLog(dir);
    log.endWithNewline();
    if (replay.deadLines >= compactDeadLinesMin && replay.deadLines > replay.records.size) {
      await log.compact(replay.records.values(), replay.corrupt.lines > 0);
    }
    return { log, replay };
  }

  put(record: StoredRecord): void {
    this.append([encodePut(record)]);
  }

  putMany(records: readonly StoredRecord[]): void {
    this.append(records.map(encodePut));
  }

  delete(id: string): void {
    this.append([encode({ t: "del", id })]);
  }

  touch(at: string, ids: readonly string[]): void {
    const lines: string[] = [];
    for (let i = 0; i < ids.length; i += touchIdsPerLineMax)
      lines.push(encode({ t: "touch", at, ids: ids.slice(i, i + touchIdsPerLineMax) }));
    if (lines.length > 0) this.append(lines);
  }

  /** Rewrites the log as one put per live record; corrupt lines are first copied aside, never dropped. */
  async compact(records: Iterable<StoredRecord>, keepCorrupt: boolean): Promise<void> {
    if (keepCorrupt) await copyCorruptLines(this.path, join(this.dir, `memory.corrupt-${Date.now()}.log`));
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      let batch: string[] = [];
      for (const record of records) {
        batch.push(encodePut(record));
        if (batch.length >= 1_000) {
          writeSync(fd, batch.join(""));
          batch = [];
        }
      }
      if (batch.length > 0) writeSync(fd, batch.join(""));
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    closeSync(this.fd);
    renameSync(tmp, this.path);
    syncDir(this.dir);
    this.fd = openSync(this.path, "a");
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Every append is on disk (fdatasync) before it returns: a write the API acknowledged survives a crash. */
  private append(lines: readonly string[]): void {
    writeSync(this.fd, lines.join(""));
    fdatasyncSync(this.fd);
  }

  /** A crash can leave a torn last line; the next append must not glue itself onto it. */
  private endWithNewline(): void {
    const size = fstatSync(this.fd).size;
    if (size === 0) return;
    const last = Buffer.alloc(1);
    const readFd = openSync(this.path, "r");
    try {
      readSync(readFd, last, 0, 1, size - 1);
    } finally {
      closeSync(readFd);
    }
    if (last[0] !== 0x0a) writeSync(this.fd, "\n");
  }
}

export function encodeVector(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64");
}

export function decodeVector(text: string): Float32Array | undefined {
  const bytes = Buffer.from(text, "base64");
  if (bytes.length === 0 || bytes.length % 4 !== 0) return undefined;
  const vector = new Float32Array(bytes.length / 4);
  Buffer.from(vector.buffer).set(bytes);
  for (let i = 0; i < vector.length; i++) if (!Number.isFinite(vector[i])) return undefined;
  return vector;
}

function encodePut(record: StoredRecord): string {
  const { vector, ...fields } = record;
  return encode({ t: "put", r: { ...fields, v: encodeVector(vector) } });
}

function encode(op: LogOp): string {
  const json = JSON.stringify(op);
  return `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`;
}

function emptyReplay(): LogReplay {
  return { records: new Map(), corrupt: { lines: 0, samples: [] }, deadLines: 0 };
}

async function replayFile(path: string): Promise<LogReplay> {
  const replay = emptyReplay();
  const lines = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.length === 0) continue;
    const decoded = decodeLine(line);
    if (typeof decoded === "string") {
      replay.corrupt.lines++;
      replay.deadLines++;
      if (replay.corrupt.samples.length < corruptSamplesMax) replay.corrupt.samples.push(`line ${lineNo}: ${decoded}`);
      continue;
    }
    applyOp(replay, decoded);
  }
  return replay;
}

function applyOp(replay: LogReplay, op: ValidOp): void {
  if (op.t === "put") {
    if (replay.records.has(op.record.id)) replay.deadLines++;
    replay.records.set(op.record.id, op.record);
  } else if (op.t === "del") {
    if (replay.records.delete(op.id)) replay.deadLines++;
    replay.deadLines++;
  } else {
    replay.deadLines++;
    for (const id of op.ids) {
      const record = replay.records.get(id);
      if (record !== undefined && op.at > record.accessedAt) record.accessedAt = op.at;
    }
  }
}

type ValidOp =
  { t: "put"; record: StoredRecord } | { t: "del"; id: string } | { t: "touch"; at: string; ids: string[] };

/** A decoded operation, or a string saying why the line is corrupt. */
function decodeLine(line: string): ValidOp | string {
  const space = line.indexOf(" ");
  if (space !== 8) return "no checksum";
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, "0") !== line.slice(0, 8)) return "checksum mismatch";
  let op: unknown;
  try {
    op = JSON.parse(json);
  } catch {
    return "not JSON";
  }
  return validateOp(op);
}

function validateOp(op: unknown): ValidOp | string {
  if (typeof op !== "object" || op === null) return "not an object";
  const candidate = op as Partial<Record<"t" | "id" | "at" | "ids" | "r", unknown>>;
  if (candidate.t === "del" && typeof candidate.id === "string") return { t: "del", id: candidate.id };
  if (
    candidate.t === "touch" &&
    typeof candidate.at === "string" &&
    Array.isArray(candidate.ids) &&
    candidate.ids.every((id) => typeof id === "string")
  ) {
    return { t: "touch", at: candidate.at, ids: candidate.ids as string[] };
  }
  if (candidate.t !== "put" || typeof candidate.r !== "object" || candidate.r === null) return "unknown operation";
  const raw = candidate.r as { v?: unknown };
  const parsed = MemoryRecord.safeParse(raw);
  if (!parsed.success)
    return `bad record: ${parsed.error.issues[0]?.path.join(".") ?? "?"} ${parsed.error.issues[0]?.message ?? ""}`.trim();
  const vector = typeof raw.v === "string" ? decodeVector(raw.v) : undefined;
  if (vector === undefined) return `bad vector for record ${parsed.data.id}`;
  return { t: "put", record: { ...parsed.data, vector } };
}

async function copyCorruptLines(from: string, to: string): Promise<void> {
  const fd = openSync(to, "w");
  try {
    const lines = createInterface({ input: createReadStream(from, { encoding: "utf8" }), crlfDelay: Infinity });
    for await (const line of lines)
      if (line.length > 0 && typeof decodeLine(line) === "string") writeSync(fd, `${line}\n`);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
