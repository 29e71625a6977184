import { errorBody, ErrorCode } from "@potluck/protocol";
import { isLoopbackAddress } from "@potluck/service";
import type { MiddlewareHandler } from "hono";

/**
 * Callers from anywhere but loopback reach only the peer surface (`/health`, `/peer/*`).
 * Everything else (the OpenAI API, memory, diagnostics, the dashboard) is for this machine's own
 * user, so an off-box caller gets a 403 that says why rather than a bare refusal.
 */
export function peerAccess({ remoteAddress }: { remoteAddress: (c: Parameters<MiddlewareHandler>[0]) => string | undefined }): MiddlewareHandler {
  return async (c, next) => {
    const path = c.req.path;
    if (path === "/health" || path.startsWith("/peer/")) return next();
    const address = remoteAddress(c);
    if (isLoopbackAddress(address)) return next();
    return c.json(
      errorBody(ErrorCode.forbidden, `${path} is only served to this machine (loopback); peers may call /health and /peer/* only. Caller: ${address ?? "unknown"}`),
      403,
    );
  };
}
