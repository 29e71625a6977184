import type { z } from "zod";
import { errorBody, ErrorCode, type ErrorBody } from "./errors.js";

/** The result of checking untrusted input against a schema: data, or a 400 body naming the field. */
export type Checked<T> = { ok: true; data: T } | { ok: false; status: 400; body: ErrorBody };

/** Checks `input` against `schema`. Never throws on bad input, whatever its shape. */
export function check<S extends z.ZodType>(schema: S, input: unknown): Checked<z.infer<S>> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return { ok: true, data: parsed.data };
  return { ok: false, status: 400, body: describeZodError(parsed.error) };
}

/** Turns a zod failure into the shared error shape, naming the first offending field. */
export function describeZodError(error: z.ZodError): ErrorBody {
  const issue = error.issues[0];
  if (issue === undefined) return errorBody(ErrorCode.invalidRequest, "invalid request body", "body");
  const field = issue.path.length > 0 ? issue.path.map(String).join(".") : "body";
  return errorBody(ErrorCode.invalidRequest, `${field}: ${issue.message}`, field);
}

/** The part of a Hono context the validator hook needs; structural so protocol imports no framework. */
export interface JsonResponder {
  json(body: unknown, status: 400): Response;
}

/**
 * The Hono validation helper. Use as `validator("json", zodHook(Schema))` from `hono/validator`:
 * valid input becomes the typed `c.req.valid("json")`; invalid input is answered with a 400 in
 * the shared error shape naming the field, never a 500.
 */
export function zodHook<S extends z.ZodType>(schema: S) {
  return (value: unknown, c: JsonResponder): z.infer<S> | Response => {
    const result = check(schema, value);
    return result.ok ? result.data : c.json(result.body, 400);
  };
}
