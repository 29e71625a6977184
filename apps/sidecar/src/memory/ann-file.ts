import {
  closeSync,
  existsSync,
  fdatasyncSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { crc32 } from "node:zlib";

/**
 * An HNSW index on disk: `<base>.usearch` (usearch's own format) next to `<base>.json`, which says
 * what the graph was built from. Building a large graph takes orders of magnitude longer than
 * loading the file (BENCHMARKS.md, "Retrieval"), so a restart loads it when the description
 * still matches the records the store replayed, and rebuilds otherwise.
 */
export interface AnnFileMeta {
  format: typeof annFileFormat;
  embedderId: string;
  dimensions: number;
  connectivity: number;
  quantization: string;
  /** Size and CRC-32 of the .usearch file: a torn or bit-flipped graph is never handed to native code. */
  indexBytes: number;
  indexCrc32: number;
  /** Record id per index key (the key is the position); null where the record was removed. */
  ids: (string | null)[];
}

/** What a saved index must have been built with to be usable now. */
export type AnnFileIdentity = Pick<AnnFileMeta, "embedderId" | "dimensions" | "connectivity" | "quantization">;

export const annFileFormat = 1;

export function annFilePaths(base: string): { index: string; meta: string } {
  return { index: `${base}.usearch`, meta: `${base}.json` };
}

/**
 * Writes the index (through `save`, usearch's writer) and then its description, each to a temp
 * file renamed into place, the description last: a crash between the two leaves a description
 * whose checksum no longer matches, which reads as stale.
 */
export function writeAnnFile(
  base: string,
  save: (path: string) => void,
  meta: Omit<AnnFileMeta, "format" | "indexBytes" | "indexCrc32">,
): void {
  const paths = annFilePaths(base);
  save(`${paths.index}.tmp`);
  syncFile(`${paths.index}.tmp`);
  const bytes = readFileSync(`${paths.index}.tmp`);
  renameSync(`${paths.index}.tmp`, paths.index);
  const full: AnnFileMeta = { format: annFileFormat, ...meta, indexBytes: bytes.length, indexCrc32: crc32(bytes) };
  writeFileSync(`${paths.meta}.tmp`, JSON.stringify(full));
  syncFile(`${paths.meta}.tmp`);
  renameSync(`${paths.meta}.tmp`, paths.meta);
}

/**
 * The saved description, if there is one, it is whole, it was built with `identity`, and the
 * index file beside it is the one it describes; otherwise why not (logged by the caller).
 */
export function readAnnFile(
  base: string,
  identity: AnnFileIdentity,
): { meta: AnnFileMeta; indexPath: string } | { reason: string } {
  const paths = annFilePaths(base);
  if (!existsSync(paths.meta) || !existsSync(paths.index)) return { reason: "no saved index" };
  let meta: AnnFileMeta;
  try {
    meta = JSON.parse(readFileSync(paths.meta, "utf8")) as AnnFileMeta;
  } catch {
    return { reason: "index description is not JSON" };
  }
  if (meta.format !== annFileFormat || !Array.isArray(meta.ids))
    return { reason: `index description format ${String(meta.format)}, expected ${annFileFormat}` };
  for (const field of ["embedderId", "dimensions", "connectivity", "quantization"] as const) {
    if (meta[field] !== identity[field])
      return { reason: `index built with ${field} ${String(meta[field])}, store uses ${String(identity[field])}` };
  }
  if (statSync(paths.index).size !== meta.indexBytes)
    return { reason: "index file size differs from its description (torn write?)" };
  if (crc32(readFileSync(paths.index)) !== meta.indexCrc32) return { reason: "index file checksum mismatch (corrupt)" };
  return { meta, indexPath: paths.index };
}

function syncFile(path: string): void {
  const fd = openSync(path, "r+");
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
