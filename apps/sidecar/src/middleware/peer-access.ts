import { loopbackGuard } from "@potluck/service";
import type { Context, MiddlewareHandler } from "hono";

export interface PeerAccessOptions {
  /** The TCP peer's address; undefined (as under `app.request()`) counts as off-box. */
  remoteAddress: (c: Context) => string | undefined;
  /** POTLUCK_API_KEY: a caller presenting it as a bearer token reaches the local API from the LAN. */
  apiKey?: string;
}

/**
 * Callers from anywhere but loopback reach only the peer surface (`/health`, `/peer/*`, signed).
 * Everything else (the OpenAI and Ollama APIs, memory, diagnostics, the dashboard) is for this
 * machine's own user: the caller must be on loopback under a loopback Host and Origin, so a web
 * page the user opens cannot reach it by DNS rebinding, or present the API key.
 */
export function peerAccess({ remoteAddress, apiKey }: PeerAccessOptions): MiddlewareHandler {
  return loopbackGuard({
    isOpen: (path) => path === "/health" || path.startsWith("/peer/"),
    remoteAddress,
    ...(apiKey === undefined ? {} : { apiKey }),
    what: "the sidecar's local API (peers may call /health and /peer/* only)",
  });
}
