import { errorBody, ErrorCode, toErrorResponse } from "@potluck/protocol";
import type { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { isTransientDbError } from "./db-transient.js";
import type { Logger } from "./logger.js";

/**
 * Installs the one error answer every service gives: `{ error: { code, message, field? } }` for a
 * thrown error and for an unknown route. A 500 hides its cause from the caller (it may hold
 * internals), so it is logged here with the error; without this line it would vanish.
 * A body that is not JSON at all names `body` as the field, the way schema errors name theirs.
 */
/** Any Hono app, whatever its env and routes; the same app comes back for chaining. */
export function jsonErrors<A extends Hono<any, any, any>>(app: A, { log }: { log?: Logger } = {}): A {
  app.notFound((c) => c.json(errorBody(ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    // The database restarting or unreachable: the caller may retry, and nothing is wrong inside.
    if (isTransientDbError(err)) {
      log?.warn({ err: err.message, method: c.req.method, path: c.req.path }, "database unavailable");
      return c.json(
        errorBody(ErrorCode.unavailable, "the database is unavailable (restarting or unreachable); retry shortly"),
        503,
        { "retry-after": "1" },
      );
    }
    const { status, body } = toErrorResponse(err);
    if (status >= 500)
      log?.error({ err, method: c.req.method, path: c.req.path }, "request failed with an internal error");
    if (body.error.code === ErrorCode.malformedJson && body.error.field === undefined) {
      return c.json(errorBody(ErrorCode.malformedJson, `body: ${body.error.message}`, "body"), 400);
    }
    return c.json(body, status as ContentfulStatusCode);
  });
  return app;
}
