import { describeOllamaIssue, PotluckHttpError } from "@potluck/protocol";
import type { Logger } from "@potluck/service";
import type { Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { asHttpError } from "../http-errors.js";

/**
 * Ollama's error shape, `{ "error": "text" }`, for every failure on the Ollama routes: the official
 * clients raise the text as the error's message. A model no machine has is Ollama's own 404
 * sentence (clients match on it to offer a pull), followed by what Potluck knows.
 */
export function ollamaErrors<A extends Hono<any, any, any>>(app: A, log?: Logger): A {
  app.onError((error, c) => {
    const { status, message } = ollamaError(error);
    if (status >= 500 && !(error instanceof PotluckHttpError))
      log?.error({ err: error, method: c.req.method, path: c.req.path }, "Ollama route failed with an internal error");
    return c.json({ error: message }, status as ContentfulStatusCode);
  });
  return app;
}

/** The status and text of anything a route threw: engine, peer and routing errors keep their status. */
export function ollamaError(thrown: unknown): { status: number; message: string } {
  const error = asHttpError(thrown);
  if (error instanceof PotluckHttpError) {
    if (error.code === "model_not_found") return { status: 404, message: error.message };
    return { status: error.status, message: error.message };
  }
  if (isHttpLike(error)) {
    const text = /malformed json/i.test(error.message) ? `body: ${error.message}` : error.message;
    return { status: error.status, message: text.length > 0 ? text : `request failed with status ${error.status}` };
  }
  return { status: 500, message: "internal error; see the sidecar's log" };
}

/** Ollama's sentence for a model nobody has, then the detail (which machines were asked). */
export function modelNotFound(model: string, detail: string): PotluckHttpError {
  return new PotluckHttpError(404, "model_not_found", `model "${model}" not found, try pulling it first (${detail})`);
}

/**
 * The JSON body checked against an Ollama schema. Read whatever the Content-Type says: Ollama does,
 * and its own docs send bodies with `curl -d` (form-encoded by curl's default). A body that is not
 * JSON, or does not match, is a 400 naming the field.
 */
export async function ollamaBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  let value: unknown;
  try {
    value = text.trim().length === 0 ? {} : JSON.parse(text);
  } catch (error) {
    throw new PotluckHttpError(400, "malformed_json", `body: not JSON (${(error as Error).message})`, "body");
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const { field, message } = describeOllamaIssue(parsed.error);
  throw new PotluckHttpError(400, "invalid_request", message, field);
}

function isHttpLike(error: unknown): error is { status: number; message: string } {
  if (typeof error !== "object" || error === null) return false;
  const candidate = error as { status?: unknown; message?: unknown };
  return (
    typeof candidate.status === "number" &&
    candidate.status >= 400 &&
    candidate.status <= 599 &&
    typeof candidate.message === "string"
  );
}
