import { fingerprintOfToken, verifyCoordinatorAnswer } from "@potluck/peer";
import {
  EnrollResponse,
  ErrorBody,
  Roster,
  RosterVersion,
  TokenCreated,
  type EnrollRequest,
  type TokenCreateRequest,
} from "@potluck/protocol";
import type { z } from "zod";

/** One call to the coordinator may take this long; it answers in milliseconds when healthy. */
const requestTimeoutMs = 15_000;

/** A coordinator answer that was not 2xx, with its error code and field when it gave them. */
export class CoordinatorError extends Error {
  override name = "CoordinatorError";
  constructor(
    message: string,
    readonly status: number | null,
    readonly code?: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Which key must have signed an answer: the pinned one, or the one whose fingerprint a join token carries. */
type AnswerPin = { publicKey: string } | { fingerprint: string };

/**
 * The coordinator's HTTP API as the CLI and the mesh daemon use it; every answer schema-checked.
 * With `coordinatorKey` (pinned at enrollment), roster answers must be signed with it; enrollment
 * always checks the key against the fingerprint in the join token. Without a pin, roster reads
 * are only for display (`potluck peers`), never for building the tunnel.
 */
export function coordinatorClient(baseUrl: string, options: { adminSecret?: string; coordinatorKey?: string } = {}) {
  const base = baseUrl.replace(/\/+$/, "");
  const pinned: AnswerPin | undefined =
    options.coordinatorKey === undefined ? undefined : { publicKey: options.coordinatorKey };
  async function call<S extends z.ZodType>(
    action: string,
    schema: S,
    method: string,
    path: string,
    body?: unknown,
    pin?: AnswerPin,
  ): Promise<{ data: z.infer<S>; publicKey?: string }> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.adminSecret !== undefined) headers.authorization = `Bearer ${options.adminSecret}`;
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
    } catch (error) {
      const reason =
        error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      throw new CoordinatorError(`${action}: coordinator ${base} unreachable: ${reason}`, null);
    }
    const text = await res.text();
    if (!res.ok) {
      const parsed = ErrorBody.safeParse(safeJson(text));
      const detail = parsed.success ? `${parsed.data.error.message} (${parsed.data.error.code})` : text.slice(0, 200);
      throw new CoordinatorError(
        `${action}: ${res.status} ${detail}`,
        res.status,
        parsed.data?.error.code,
        parsed.data?.error.field,
      );
    }
    let publicKey: string | undefined;
    if (pin !== undefined) {
      // Checked before parsing: an answer changed on the way is refused whatever it says.
      const check = verifyCoordinatorAnswer({ path, body: text, header: (name) => res.headers.get(name) }, pin);
      if (!check.ok)
        throw new CoordinatorError(
          `${action}: refused the answer from ${base}: ${check.message}`,
          res.status,
          "coordinator_signature",
        );
      publicKey = check.publicKey;
    }
    const parsed = schema.safeParse(safeJson(text));
    if (!parsed.success)
      throw new CoordinatorError(
        `${action}: unexpected answer from ${base}: ${parsed.error.issues[0]?.message ?? "invalid"}`,
        res.status,
      );
    return { data: parsed.data, publicKey };
  }
  return {
    baseUrl: base,
    /** Enrolls and returns the answer with the hub's key, checked against the token's fingerprint: the key to pin. */
    enroll: async (request: EnrollRequest) => {
      const fingerprint = fingerprintOfToken(request.token);
      if (fingerprint === undefined)
        throw new CoordinatorError(
          "enrolling: the join token carries no fingerprint of the coordinator's key; create a new one with potluck token create",
          null,
          "token_unpinned",
          "token",
        );
      const { data, publicKey } = await call("enrolling", EnrollResponse, "POST", "/v1/enroll", request, {
        fingerprint,
      });
      return { ...data, coordinatorKey: publicKey as string };
    },
    roster: async () => (await call("reading roster", Roster, "GET", "/v1/roster", undefined, pinned)).data,
    rosterVersion: async () =>
      (await call("reading roster version", RosterVersion, "GET", "/v1/roster/version", undefined, pinned)).data
        .version,
    createToken: async (request: Partial<TokenCreateRequest>) =>
      (await call("creating join token", TokenCreated, "POST", "/v1/tokens", request)).data,
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
