import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, statfsSync, statSync } from "node:fs";
import { join } from "node:path";
import { sha256File, sha256Pattern, statedSha256 } from "./checksum.js";
import { PulledManifest, type PulledModel } from "./manifest.js";
import { parsePullRef, PullRefError, type PullTarget } from "./pull-ref.js";

/** One progress report: bytes, rate and time left, as the CLI's bar and the NDJSON stream show them. */
export interface PullProgress {
  status: "resolving" | "downloading" | "verifying";
  totalBytes?: number;
  completedBytes?: number;
  /** Average over the active transfer, bytes per second. */
  bytesPerS?: number;
  /** Seconds left at that rate; absent while unknown. */
  etaS?: number;
}

export interface PullOptions {
  /** Potluck's pulled-models folder (DATA_DIR/models/pulled). */
  dir: string;
  onProgress?: (progress: PullProgress) => void;
  signal?: AbortSignal;
  /** The expected SHA-256 (64 hex); absent: whatever the server states, else unverified. */
  sha256?: string;
  /**
   * Where `hf:` URIs resolve (node-llama-cpp's `endpoints.huggingFace`); absent: node-llama-cpp's own
   * default (MODEL_ENDPOINT, HF_ENDPOINT, else https://huggingface.co/).
   */
  hfEndpoint?: string;
  /** No byte for this long ends the pull (its partial file stays, to resume). */
  stallMs?: number;
}

export interface PulledFile extends PulledModel {
  /** The file llama.cpp opens: the first part of a split model. */
  path: string;
  /** True when it was already pulled from this reference and nothing was downloaded. */
  already: boolean;
}

/** Why a pull was refused; `status` maps onto HTTP (400 a bad reference or checksum, 409 a clash). */
export class PullError extends Error {
  override name = "PullError";
  constructor(
    readonly status: 400 | 409 | 502 | 507,
    readonly code: "invalid_ref" | "checksum_mismatch" | "model_exists" | "download_failed" | "disk_full",
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** ipull (under node-llama-cpp) retries a broken transfer up to 150 times; a dead server ends the pull sooner. */
export const pullStallMsDefault = 60_000;
/** Partial downloads live here, one folder per reference, so an interrupted pull resumes where it stopped. */
const partialDirName = ".partial";

/**
 * Downloads a GGUF with node-llama-cpp's downloader (ipull: ranged, resumable, split models'
 * parts in parallel) into a staging folder inside `dir`, verifies its SHA-256 when one is known,
 * then moves it into `dir` and records it in the manifest. A bad checksum deletes everything it
 * downloaded; an interruption keeps the partial file, and the same pull later resumes it.
 */
export async function pullModel(ref: string, options: PullOptions): Promise<PulledFile> {
  const target = parseTarget(ref);
  const expected = options.sha256?.toLowerCase();
  if (expected !== undefined && !sha256Pattern.test(expected))
    throw new PullError(400, "invalid_ref", "sha256: expected 64 hexadecimal digits", "sha256");
  if (expected !== undefined && target.split)
    throw new PullError(
      400,
      "invalid_ref",
      "sha256: a split model has one checksum per part; pull it without --sha256",
      "sha256",
    );
  const manifest = new PulledManifest(options.dir);
  const known = manifest.get(target.id);
  if (known !== undefined) return sameOrClash(known, target, options.dir, expected);
  if (existsSync(join(options.dir, target.fileName)))
    throw new PullError(
      409,
      "model_exists",
      `${join(options.dir, target.fileName)} exists but Potluck did not pull it; move it away first`,
    );
  const staging = join(options.dir, partialDirName, createHash("sha256").update(target.ref).digest("hex").slice(0, 16));
  mkdirSync(staging, { recursive: true });
  options.onProgress?.({ status: "resolving" });
  // One endpoint for the checksum question and the download, so both ask the same server.
  const hfEndpoint = options.hfEndpoint ?? defaultHfEndpoint();
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  try {
    const stated = expected ?? (target.split ? null : await statedSha256(httpUrlOf(target, hfEndpoint), abort.signal));
    const files = await download(target, staging, { ...options, hfEndpoint }, abort);
    const first = files[0]!;
    if (stated !== null && stated !== undefined) {
      options.onProgress?.({ status: "verifying" });
      const actual = await sha256File(join(staging, first));
      if (actual !== stated) {
        rmSync(staging, { recursive: true, force: true });
        throw new PullError(
          400,
          "checksum_mismatch",
          `${target.fileName}: SHA-256 is ${actual}, expected ${stated}` +
            `${expected === undefined ? " (as the server states)" : ""}; the download was deleted`,
          expected === undefined ? "ref" : "sha256",
        );
      }
    }
    let sizeBytes = 0;
    for (const file of files) {
      sizeBytes += statSync(join(staging, file)).size;
      renameSync(join(staging, file), join(options.dir, file));
    }
    rmSync(staging, { recursive: true, force: true });
    const model: PulledModel = {
      id: target.id,
      ref: target.ref,
      files,
      sizeBytes,
      sha256: stated ?? null,
      pulledAt: new Date().toISOString(),
    };
    manifest.add(model);
    return { ...model, path: join(options.dir, first), already: false };
  } finally {
    options.signal?.removeEventListener("abort", onOuterAbort);
  }
}

function parseTarget(ref: string): PullTarget {
  try {
    return parsePullRef(ref);
  } catch (error) {
    if (error instanceof PullRefError) throw new PullError(400, "invalid_ref", error.message, "ref");
    throw error;
  }
}

/** A model already pulled: the same one again is done, unless the checksum asked for is not its own. */
async function sameOrClash(
  known: PulledModel,
  target: PullTarget,
  dir: string,
  expected: string | undefined,
): Promise<PulledFile> {
  if (known.ref !== target.ref)
    throw new PullError(
      409,
      "model_exists",
      `model ${known.id} was pulled from ${known.ref}; remove it first (potluck models rm ${known.id})`,
    );
  const path = join(dir, known.files[0]!);
  const actual = expected === undefined ? undefined : (known.sha256 ?? (await sha256File(path)));
  if (actual !== undefined && actual !== expected)
    throw new PullError(
      400,
      "checksum_mismatch",
      `${known.id} is already pulled and its SHA-256 is ${actual}, not ${expected}; remove it first to pull it again`,
      "sha256",
    );
  return { ...known, path, already: true };
}

/**
 * The URL an `hf:` URI stands for, as node-llama-cpp builds it (…/resolve/<branch>/<path>), used
 * only to ask the server for its checksum before the downloader fetches the same URL.
 */
function httpUrlOf(target: PullTarget, hfEndpoint: string): string {
  if (!target.uri.startsWith("hf:")) return target.uri;
  const [repoPath = "", branch = "main"] = target.uri.slice("hf:".length).split("#");
  const [org = "", repo = "", ...path] = repoPath.split("/");
  const base = hfEndpoint.endsWith("/") ? hfEndpoint : `${hfEndpoint}/`;
  const file = path.map(encodeURIComponent).join("/");
  return `${base}${encodeURIComponent(org)}/${encodeURIComponent(repo)}/resolve/${encodeURIComponent(branch)}/${file}`;
}

/** The download itself: node-llama-cpp's downloader, watched for stalls and for disk space. */
async function download(
  target: PullTarget,
  staging: string,
  options: PullOptions & { hfEndpoint: string },
  abort: AbortController,
) {
  const { createModelDownloader } = await import("node-llama-cpp");
  const stallMs = options.stallMs ?? pullStallMsDefault;
  let lastBytes = -1;
  let lastChange = Date.now();
  const downloader = await createModelDownloader({
    modelUri: target.uri,
    dirPath: staging,
    ...(target.split ? {} : { fileName: target.fileName }),
    // The partial file is what an interrupted pull resumes from.
    deleteTempFileOnCancel: false,
    skipExisting: true,
    endpoints: { huggingFace: options.hfEndpoint },
    onProgress: ({ totalSize, downloadedSize, averageSpeed, estimatedTimeLeft }) => {
      if (downloadedSize !== lastBytes) {
        lastBytes = downloadedSize;
        lastChange = Date.now();
      }
      options.onProgress?.({
        status: "downloading",
        totalBytes: totalSize,
        completedBytes: downloadedSize,
        bytesPerS: Math.round(averageSpeed),
        ...(Number.isFinite(estimatedTimeLeft) ? { etaS: Math.round(estimatedTimeLeft / 1000) } : {}),
      });
    },
  }).catch((error: unknown) => {
    throw new PullError(502, "download_failed", `${target.ref}: ${messageOf(error)}`);
  });
  const remaining = downloader.totalSize - downloader.downloadedSize;
  const free = freeBytes(staging);
  if (free !== undefined && remaining > free) {
    await downloader.cancel({ deleteTempFile: false });
    throw new PullError(507, "disk_full", `${target.ref} needs ${remaining} more bytes; ${staging} has ${free} free`);
  }
  const watchdog = setInterval(
    () => {
      if (Date.now() - lastChange > stallMs)
        abort.abort(new Error(`no data from the server for ${Math.round(stallMs / 1000)} s`));
    },
    Math.min(1_000, stallMs),
  );
  try {
    // A cancelled download can end without an error, or stay inside the downloader's retry wait:
    // the abort ends the pull at once either way (the downloader is cancelled by the same signal).
    const aborted = new Promise<never>((_, reject) => {
      const fail = () => reject(abort.signal.reason);
      if (abort.signal.aborted) fail();
      else abort.signal.addEventListener("abort", fail, { once: true });
    });
    await Promise.race([downloader.download({ signal: abort.signal }), aborted]);
    if (abort.signal.aborted) throw abort.signal.reason;
  } catch (error) {
    throw new PullError(502, "download_failed", `${target.ref}: ${messageOf(error)} (run the pull again to resume)`);
  } finally {
    clearInterval(watchdog);
  }
  return downloader.filesInfo.map((f) => f.fileName);
}

/** node-llama-cpp's own order when no endpoint is given: MODEL_ENDPOINT, HF_ENDPOINT, huggingface.co. */
function defaultHfEndpoint(): string {
  for (const value of [process.env.MODEL_ENDPOINT, process.env.HF_ENDPOINT])
    if (value !== undefined && /^https?:\/\//.test(value)) return value;
  return "https://huggingface.co/";
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
