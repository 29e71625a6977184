import {
  describeOpenAiZodError,
  ErrorCode,
  PotluckHttpError,
  toErrorResponse,
  type OpenAiErrorBody,
} from "@potluck/protocol";
import { requestHeader } from "@potluck/service";
import type { Hono, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";

/**
 * Errors on the OpenAI routes in OpenAI's shape, `{error: {message, type, param, code}}`, which
 * its clients parse into their exceptions. One path: a schema failure is thrown like any other
 * error and every thrown error is rendered here, from the shared mapping (protocol's
 * toErrorResponse). `field` stays beside `param`, as every other Potluck API names it.
 */
export function openAiErrors<A extends Hono<any, any, any>>(app: A): A {
  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    return c.json(openAiErrorBody(status, body.error), status as ContentfulStatusCode);
  });
  return app;
}

export function openAiErrorBody(
  status: number,
  error: { code: string; message: string; field?: string },
): OpenAiErrorBody & { error: { field?: string } } {
  const param = error.field ?? (error.code === ErrorCode.malformedJson ? "body" : null);
  const message = error.code === ErrorCode.malformedJson && param === "body" ? `body: ${error.message}` : error.message;
  return {
    error: {
      message,
      type: typeOf(status),
      param,
      code: error.code,
      ...(param === null ? {} : { field: param }),
    },
  };
}

/** OpenAI's error types: its SDKs pick the exception class from the status, the type is for people. */
function typeOf(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

const jsonMediaType = /^application\/([\w.-]+\+)?json$/i;

/**
 * The JSON body checked against an OpenAI schema; a failure is a 400 naming the field (`param`).
 * hono's `validator("json")`, step for step (a body that is not declared JSON is checked as `{}`),
 * but reading Content-Type from Node's request: hono's `c.req.header()` would build a fetch
 * Headers object first, on the path to the first token (see @potluck/service's requestHeader).
 */
export function openAiBody<S extends z.ZodType>(
  schema: S,
): MiddlewareHandler<any, string, { in: { json: z.input<S> }; out: { json: z.infer<S> } }> {
  return async (c, next) => {
    const contentType = requestHeader(c, "content-type");
    const mediaType = contentType ? (contentType.split(";")[0] ?? "").trim().toLowerCase() : "";
    let value: unknown = {};
    if (jsonMediaType.test(mediaType)) {
      try {
        value = await c.req.json();
      } catch {
        throw new HTTPException(400, { message: "Malformed JSON in request body" });
      }
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const { message, param } = describeOpenAiZodError(parsed.error);
      throw new PotluckHttpError(400, ErrorCode.invalidRequest, message, param);
    }
    c.req.addValidatedData("json", parsed.data as object);
    await next();
  };
}
