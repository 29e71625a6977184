import { z } from "zod";

/**
 * The one error shape every Potluck HTTP API answers with. `field` names the offending input
 * (a dotted path such as `messages.0.content`) whenever the error is about one.
 */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string().min(1),
    message: z.string().min(1),
    field: z.string().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Error codes shared by every service; apps may add their own strings. */
export const ErrorCode = {
  invalidRequest: "invalid_request",
  malformedJson: "malformed_json",
  bodyTooLarge: "body_too_large",
  notFound: "not_found",
  forbidden: "forbidden",
  unauthorized: "unauthorized",
  unavailable: "unavailable",
  conflict: "conflict",
  internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export function errorBody(code: string, message: string, field?: string): ErrorBody {
  return field === undefined ? { error: { code, message } } : { error: { code, message, field } };
}

/** The JSON error names this status's conventional code when the thrower gave none. */
export function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return ErrorCode.invalidRequest;
    case 401:
      return ErrorCode.unauthorized;
    case 403:
      return ErrorCode.forbidden;
    case 404:
      return ErrorCode.notFound;
    case 409:
      return ErrorCode.conflict;
    case 413:
      return ErrorCode.bodyTooLarge;
    case 503:
      return ErrorCode.unavailable;
    default:
      return status >= 500 ? ErrorCode.internal : ErrorCode.invalidRequest;
  }
}

/**
 * An error a handler throws to answer with a given status in the shared shape. Apps' onError
 * handlers turn it (and any HTTP exception the framework throws) into `ErrorBody`.
 */
export class PotluckHttpError extends Error {
  override name = "PotluckHttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Maps anything thrown inside a handler to a status and an `ErrorBody`, without importing a
 * framework: a framework HTTP exception is recognised by its numeric `status`. Unknown errors are
 * a 500 whose message does not leak internals.
 */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof PotluckHttpError) {
    return { status: err.status, body: errorBody(err.code, err.message, err.field) };
  }
  if (isHttpLike(err)) {
    const message = err.message.length > 0 ? err.message : `request failed with status ${err.status}`;
    const code = /malformed json/i.test(message) ? ErrorCode.malformedJson : codeForStatus(err.status);
    return { status: err.status, body: errorBody(code, message) };
  }
  return { status: 500, body: errorBody(ErrorCode.internal, "internal error; see the service log") };
}

function isHttpLike(err: unknown): err is { status: number; message: string } {
  if (typeof err !== "object" || err === null) return false;
  const candidate = err as { status?: unknown; message?: unknown };
  return (
    typeof candidate.status === "number" &&
    candidate.status >= 400 &&
    candidate.status <= 599 &&
    typeof candidate.message === "string"
  );
}
