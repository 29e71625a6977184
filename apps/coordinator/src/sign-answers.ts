import { signCoordinatorAnswer } from "@potluck/peer";
import type { MiddlewareHandler } from "hono";
import type { CoordinatorKey } from "./signing-key.js";

/**
 * Signs every successful answer (roster, roster version, machines, enrollment, tokens) with the
 * hub's key over its path and exact body bytes. Answers are small JSON documents (the roster is
 * bounded by `CoordinatorLimits.rosterMachinesMax`), so buffering one to sign it costs little.
 * Errors go unsigned: a client refuses them anyway.
 */
export function signAnswers(key: CoordinatorKey): MiddlewareHandler {
  return async (c, next) => {
    await next();
    if (c.res.status < 200 || c.res.status >= 300) return;
    const body = new Uint8Array(await c.res.clone().arrayBuffer());
    const headers = signCoordinatorAnswer(new URL(c.req.url).pathname, body, key);
    const signed = new Response(body, c.res);
    for (const [name, value] of Object.entries(headers)) signed.headers.set(name, value);
    c.res = signed;
  };
}
