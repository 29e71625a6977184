import { Defaults, ErrorBody } from "@potluck/protocol";
import { CliError } from "../cli/command.js";
import { unreachableMessage } from "../lib/unreachable.js";

/** The household list as `GET /v1/models` answers it (the fields the CLI reads). */
export interface ModelLocation {
  machine: string;
  owner: string;
  relation: "local" | "own" | "peer";
  state: string;
  progress?: number;
  reason?: string;
  runtime?: {
    backend: string;
    gpuLayers: number;
    vramBytes: number;
    ramBytes: number;
    expiresAt: string | null;
  };
}
export interface ModelEntry {
  id: string;
  potluck: ModelLocation & {
    test_model: boolean;
    context_size?: number;
    kind?: string;
    source?: string;
    size_bytes?: number;
    family?: string;
    quantization?: string;
    parameters?: number;
    locations: ModelLocation[];
  };
}
export interface ModelList {
  data: ModelEntry[];
  potluck: {
    machines: Array<{
      machine: string;
      relation: string;
      status: "ok" | "unreachable";
      models: number;
      error?: { layer: string; message: string };
    }>;
  };
}
export interface PulledModelInfo {
  id: string;
  ref: string;
  files: string[];
  sizeBytes: number;
  sha256: string | null;
  pulledAt: string;
}

/** This machine's sidecar: --url, else 127.0.0.1 on POTLUCK_PORT (the local API is loopback-only). */
export function sidecarBase(url: string | undefined): string {
  return (url ?? `http://127.0.0.1:${process.env.POTLUCK_PORT ?? Defaults.sidecarPort}`).replace(/\/$/, "");
}

/** Bound on one answer from the local sidecar (a pull's stream has its own, longer one). */
const requestTimeoutMs = 30_000;

export async function call(base: string, path: string, init: RequestInit = {}, timeoutMs = requestTimeoutMs) {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs), ...init }).catch(
    (error: unknown) => {
      throw new CliError(unreachableMessage("sidecar", base, error));
    },
  );
  if (!res.ok) throw new CliError(await describeError(res));
  return res;
}

export async function getJson<T>(base: string, path: string): Promise<T> {
  return (await (await call(base, path)).json()) as T;
}

/** The sidecar's own words for a refusal: its message and code. */
export async function describeError(res: Response): Promise<string> {
  const parsed = ErrorBody.safeParse(await res.json().catch(() => undefined));
  return parsed.success
    ? `${parsed.data.error.message} (${res.status} ${parsed.data.error.code})`
    : `the sidecar answered HTTP ${res.status}`;
}
