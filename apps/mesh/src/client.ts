import { EnrollResponse, ErrorBody, Roster, RosterVersion, TokenCreated, type EnrollRequest, type TokenCreateRequest } from "@potluck/protocol";
import type { z } from "zod";

/** One call to the coordinator may take this long; it answers in milliseconds when healthy. */
const requestTimeoutMs = 15_000;

/** A coordinator answer that was not 2xx, with its error code and field when it gave them. */
export class CoordinatorError extends Error {
  override name = "CoordinatorError";
  constructor(message: string, readonly status: number | null, readonly code?: string, readonly field?: string) {
    super(message);
  }
}

/** The coordinator's HTTP API as the CLI and the mesh daemon use it; every answer schema-checked. */
export function coordinatorClient(baseUrl: string, options: { adminSecret?: string } = {}) {
  const base = baseUrl.replace(/\/+$/, "");
  async function call<S extends z.ZodType>(action: string, schema: S, method: string, path: string, body?: unknown): Promise<z.infer<S>> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.adminSecret !== undefined) headers.authorization = `Bearer ${options.adminSecret}`;
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(requestTimeoutMs) });
    } catch (error) {
      const reason = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      throw new CoordinatorError(`${action}: coordinator ${base} unreachable: ${reason}`, null);
    }
    const text = await res.text();
    if (!res.ok) {
      const parsed = ErrorBody.safeParse(safeJson(text));
      const detail = parsed.success ? `${parsed.data.error.message} (${parsed.data.error.code})` : text.slice(0, 200);
      throw new CoordinatorError(`${action}: ${res.status} ${detail}`, res.status, parsed.data?.error.code, parsed.data?.error.field);
    }
    const parsed = schema.safeParse(safeJson(text));
    if (!parsed.success) throw new CoordinatorError(`${action}: unexpected answer from ${base}: ${parsed.error.issues[0]?.message ?? "invalid"}`, res.status);
    return parsed.data;
  }
  return {
    baseUrl: base,
    enroll: (request: EnrollRequest) => call("enrolling", EnrollResponse, "POST", "/v1/enroll", request),
    roster: () => call("reading roster", Roster, "GET", "/v1/roster"),
    rosterVersion: async () => (await call("reading roster version", RosterVersion, "GET", "/v1/roster/version")).version,
    createToken: (request: Partial<TokenCreateRequest>) => call("creating join token", TokenCreated, "POST", "/v1/tokens", request),
  };
}
export type CoordinatorClient = ReturnType<typeof coordinatorClient>;

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
