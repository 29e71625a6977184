import { basename, dirname, join } from "node:path";
import type { ModelInfo } from "@potluck/protocol";
import { TINY_MODEL_MARKER_KEY } from "@potluck/gguf";
import type { GgufFileInfo } from "node-llama-cpp";
import { asRecord, dig, missingGgufKeys } from "../gguf-check.js";
import { statOrUndefined } from "./folders.js";

export type Source = NonNullable<ModelInfo["source"]>;

/** One model before its header is read: a file, or every part of a split model. */
export interface Candidate {
  /** The name it is served under before de-duplication. */
  name: string;
  source: Source;
  /** The file llama.cpp opens: the first part of a split model. */
  path: string;
  parts: string[];
  /** Already known to be unusable (missing parts, a broken Ollama manifest). */
  problem?: string;
}

/** What reading the header found; the caller adds the final id. */
export interface Classified extends Candidate {
  kind: "chat" | "embedding";
  testModel: boolean;
  sizeBytes?: number;
  family?: string;
  quantization?: string;
  modifiedAt?: string;
}

const splitPattern = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/**
 * Files to candidates: `x-00001-of-00003.gguf` and its siblings are one model named `x`, its
 * size their sum; a part that is not there is the model's problem. Projector files (mmproj*),
 * which hold a vision encoder for another model, are left out: nothing can chat with one.
 */
export function groupFiles(files: readonly string[], source: Source): Candidate[] {
  const present = new Set(files);
  const candidates: Candidate[] = [];
  const splits = new Map<string, { count: number }>();
  for (const file of files) {
    const name = basename(file);
    if (isProjectorName(name)) continue;
    const split = splitPattern.exec(name);
    if (split === null) {
      candidates.push({ name: name.replace(/\.gguf$/i, ""), source, path: file, parts: [file] });
      continue;
    }
    const [, stem = "", , count = "0"] = split;
    const key = join(dirname(file), stem);
    if (!splits.has(key)) splits.set(key, { count: Number(count) });
  }
  for (const [key, { count }] of splits) {
    const dir = dirname(key);
    const stem = basename(key);
    const total = String(count).padStart(5, "0");
    const parts = Array.from({ length: count }, (_, i) =>
      join(dir, `${stem}-${String(i + 1).padStart(5, "0")}-of-${total}.gguf`),
    );
    const missing = parts.filter((part) => !present.has(part));
    const [first = key] = parts;
    candidates.push({
      name: stem,
      source,
      path: first,
      parts,
      ...(count < 1 || missing.length > 0
        ? { problem: `split model ${stem}: ${missing.map((p) => basename(p)).join(", ") || "its parts"} missing` }
        : {}),
    });
  }
  return candidates;
}

export function isProjectorName(fileName: string): boolean {
  return /^mmproj/i.test(fileName) || /[-_.]mmproj[-_.]/i.test(fileName);
}

/** Architectures that only embed (llama.cpp's encoder-only families); others embed when they say how they pool. */
const embeddingArchitectures = new Set([
  "bert",
  "nomic-bert",
  "nomic-bert-moe",
  "jina-bert-v2",
  "jina-bert-v3",
  "neo-bert",
  "modern-bert",
  "t5encoder",
]);

type Reader = typeof import("node-llama-cpp");

/**
 * Reads the header (metadata and tensor table, never the weights) and says what the model is:
 * chat or embedding, family, quantisation, size; or why it cannot be served — unreadable,
 * truncated, metadata llama.cpp would abort on, or not a model at all (a projector: undefined).
 */
export async function classify(candidate: Candidate, reader: Reader): Promise<Classified | undefined> {
  const stats = candidate.parts.map((part) => statOrUndefined(part));
  const sizeBytes = stats.reduce((sum, s) => sum + (s?.size ?? 0), 0);
  const mtime = Math.max(...stats.map((s) => s?.mtimeMs ?? 0));
  const base: Classified = {
    ...candidate,
    kind: "chat",
    testModel: false,
    sizeBytes,
    ...(mtime > 0 ? { modifiedAt: new Date(mtime).toISOString() } : {}),
  };
  if (candidate.problem !== undefined) return base;
  let info: GgufFileInfo | "slow";
  try {
    info = await withinMs(
      reader.readGgufFileInfo(candidate.path, { logWarnings: false, spliceSplitFiles: true }),
      headerReadMsMax,
    );
  } catch (error) {
    return { ...base, problem: `not a readable GGUF file: ${messageOf(error)}` };
  }
  // A header that does not come (a slow disk, a network mount, a pipe) must not hold the sidecar's
  // start: the model is listed as found, and its first load says what the file really is.
  if (info === "slow") return base;
  const metadata = info.metadata as unknown as Record<string, unknown>;
  const general = asRecord(metadata.general);
  const arch = typeof general?.architecture === "string" ? general.architecture : undefined;
  if (general?.type === "mmproj" || arch === "clip") return undefined;
  const archMeta = asRecord(metadata[arch ?? ""]);
  const fileType = typeof general?.file_type === "number" ? reader.GgufFileType[general.file_type] : undefined;
  const described: Classified = {
    ...base,
    kind:
      (arch !== undefined && embeddingArchitectures.has(arch)) || archMeta?.pooling_type !== undefined
        ? "embedding"
        : "chat",
    testModel: isTinyModelMetadata(metadata),
    ...(arch === undefined ? {} : { family: arch }),
    ...(fileType === undefined ? {} : { quantization: fileType.replace(/^(MOSTLY|ALL)_/, "") }),
  };
  const problem =
    metadataProblem(metadata) ??
    truncation(
      info,
      candidate.parts,
      stats.map((s) => s?.size ?? 0),
    );
  return problem === undefined ? described : { ...described, problem };
}

/** Keys llama.cpp aborts the process without (gguf-check.ts), and sizes it would divide by. */
function metadataProblem(metadata: Record<string, unknown>): string | undefined {
  const missing = missingGgufKeys(metadata);
  if (missing.length > 0)
    return `lacks required GGUF metadata (${missing.join(", ")}); llama.cpp would abort on it, so it is not loaded`;
  const arch = String(asRecord(metadata.general)?.architecture);
  const archMeta = asRecord(metadata[arch]);
  const zero = ["embedding_length", "block_count", "attention.head_count"].filter((key) => dig(archMeta, key) === 0);
  if (zero.length > 0)
    return `GGUF metadata ${zero.map((k) => `${arch}.${k}`).join(", ")} is 0; llama.cpp would abort on it, so it is not loaded`;
  return undefined;
}

/** Bytes per block and values per block of ggml's tensor types (ggml.c's type traits), by GgmlType number. */
// prettier-ignore
const typeSizes: Record<number, [bytes: number, values: number]> = {
  0: [4, 1], 1: [2, 1], 2: [18, 32], 3: [20, 32], 6: [22, 32], 7: [24, 32], 8: [34, 32], 9: [36, 32],
  10: [84, 256], 11: [110, 256], 12: [144, 256], 13: [176, 256], 14: [210, 256], 15: [292, 256],
  16: [66, 256], 17: [74, 256], 18: [98, 256], 19: [50, 256], 20: [18, 32], 21: [110, 256], 22: [82, 256],
  23: [136, 256], 24: [1, 1], 25: [2, 1], 26: [4, 1], 27: [8, 1], 28: [8, 1], 29: [56, 256], 30: [2, 1],
};

/**
 * A cut-off download keeps its header, so it reads fine and then fails (or worse) when loaded:
 * each part must reach the end of its last tensor. Types not in the table are checked by offset.
 */
function truncation(info: GgufFileInfo, parts: readonly string[], sizes: readonly number[]): string | undefined {
  const needed = new Map<number, number>();
  for (const tensor of info.fullTensorInfo ?? info.tensorInfo ?? []) {
    const size = typeSizes[tensor.ggmlType];
    const values = tensor.dimensions.reduce<number>((n, d) => n * Number(d), 1);
    const end = Number(tensor.fileOffset) + (size === undefined ? 1 : Math.ceil(values / size[1]) * size[0]);
    const part = (tensor.filePart ?? 1) - 1;
    needed.set(part, Math.max(needed.get(part) ?? 0, end));
  }
  for (const [part, end] of needed) {
    const have = sizes[part] ?? 0;
    if (have < end)
      return `truncated: ${basename(parts[part] ?? "")} is ${have} bytes but its tensors end at byte ${end} (an interrupted download?)`;
  }
  return undefined;
}

/** True when GGUF metadata carries the tiny model's marker (used to label files renamed by users). */
export function isTinyModelMetadata(metadata: Record<string, unknown>): boolean {
  const [prefix, key] = TINY_MODEL_MARKER_KEY.split(".");
  return asRecord(metadata[prefix ?? ""])?.[key ?? ""] === true;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** How long one file's header may take to read before discovery moves on without its metadata. */
const headerReadMsMax = 5_000;

/** `work`'s result, or "slow" when it has not settled within `ms` (it keeps running; its result is dropped). */
async function withinMs<T>(work: Promise<T>, ms: number): Promise<T | "slow"> {
  let timer: NodeJS.Timeout | undefined;
  const slow = new Promise<"slow">((resolve) => (timer = setTimeout(() => resolve("slow"), ms)));
  try {
    return await Promise.race([work, slow]);
  } finally {
    clearTimeout(timer);
  }
}
