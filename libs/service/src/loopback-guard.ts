import { createHash, timingSafeEqual } from "node:crypto";
import type { HttpBindings } from "@hono/node-server";
import { errorBody, ErrorCode } from "@potluck/protocol";
import type { Context, MiddlewareHandler } from "hono";
import { isLoopbackAddress, isLoopbackHost } from "./loopback.js";
import { requestHeader } from "./request-header.js";

export interface LoopbackGuardOptions {
  /** Paths served to anyone (a peer API, a health check): the guard lets them through untouched. */
  isOpen?: (path: string) => boolean;
  /**
   * The TCP peer's address. When given, it must be loopback (unless the API key is presented);
   * a service that binds 127.0.0.1 only may leave it out. `nodeRemoteAddress` reads it from
   * @hono/node-server.
   */
  remoteAddress?: (c: Context) => string | undefined;
  /**
   * With a key, a caller that sends `Authorization: Bearer <key>` is served from anywhere (the
   * LAN, another name); without one the API is loopback-only. There is no way to open it without
   * a key.
   */
  apiKey?: string;
  /** Names the service in refusals ("the sidecar's local API"). */
  what?: string;
}

/**
 * The guard every loopback-only API puts in front of its routes. "Loopback" is three questions:
 * who connected (the TCP peer address), which name the request was sent to (Host) and which page
 * sent it (Origin, which browsers add to cross-origin and non-GET requests). A DNS-rebinding page
 * connects from loopback under its own name, and a plain cross-site page sends its own Origin, so
 * the address alone proves nothing about a browser. A refusal is a 403 naming the header.
 *
 * A request without Host or Origin passes those checks: every browser sends Host, and a local
 * process that omits it could reach the socket directly anyway.
 */
export function loopbackGuard({
  isOpen = () => false,
  remoteAddress,
  apiKey,
  what = "this API",
}: LoopbackGuardOptions = {}): MiddlewareHandler {
  const keyDigest = apiKey === undefined || apiKey.length === 0 ? undefined : digest(apiKey);
  return async (c, next) => {
    if (isOpen(c.req.path)) return next();
    const key = keyDigest === undefined ? "none" : presentedKey(c, keyDigest);
    if (key === "match") return next();
    // A local client may send a bearer token of its own (OpenAI SDKs always do): a key that does
    // not match is ignored on loopback and named only when the request needed it.
    // Answered here rather than thrown, so the refusal has its shape in any app, onError or not.
    const wrongKey = () =>
      c.json(
        errorBody(
          ErrorCode.unauthorized,
          "authorization: the bearer token is not this machine's POTLUCK_API_KEY",
          "authorization",
        ),
        401,
      );
    if (remoteAddress !== undefined) {
      const address = remoteAddress(c);
      if (!isLoopbackAddress(address)) {
        if (key === "mismatch") return wrongKey();
        const opening =
          keyDigest === undefined
            ? "set POTLUCK_API_KEY on this machine to open it to the LAN"
            : "send Authorization: Bearer <POTLUCK_API_KEY>";
        return c.json(
          errorBody(
            ErrorCode.forbidden,
            `${c.req.path}: ${what} is only served to this machine (loopback), not to ${address ?? "an unknown caller"}; ${opening}`,
            "address",
          ),
          403,
        );
      }
    }
    const refusal = loopbackNameRefusal(c);
    if (refusal !== undefined) {
      if (key === "mismatch") return wrongKey();
      return c.json(errorBody(ErrorCode.forbidden, `${what} ${refusal.message}`, refusal.field), 403);
    }
    return next();
  };
}

/**
 * Why a request's Host or Origin is not a loopback name, or undefined when both are (or absent).
 * For routes that decide per request (a loopback exemption from an admin check).
 */
export function loopbackNameRefusal(c: Context): { field: "host" | "origin"; message: string } | undefined {
  const host = requestHeader(c, "host");
  if (host !== undefined && !isLoopbackHost(host))
    return {
      field: "host",
      message: `answers loopback names only (127.0.0.1, localhost, [::1]), not Host ${JSON.stringify(host.slice(0, 100))}`,
    };
  const origin = requestHeader(c, "origin");
  if (origin !== undefined && !isLoopbackOrigin(origin))
    return {
      field: "origin",
      message: `answers pages served from loopback only, not Origin ${JSON.stringify(origin.slice(0, 100))}`,
    };
  return undefined;
}

/** The TCP peer's address as @hono/node-server hands it over; undefined under `app.request()`. */
export function nodeRemoteAddress(c: Context): string | undefined {
  return (c.env as HttpBindings | undefined)?.incoming?.socket?.remoteAddress;
}

/** An Origin is `scheme://host[:port]`; "null" (sandboxed frames, files) names no loopback page. */
function isLoopbackOrigin(origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && isLoopbackHost(url.host);
}

function presentedKey(c: Context, keyDigest: Buffer): "match" | "mismatch" | "none" {
  const header = requestHeader(c, "authorization");
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) return "none";
  // Digests have one length, so the comparison takes the same time whatever was sent.
  return timingSafeEqual(digest(match[1] ?? ""), keyDigest) ? "match" : "mismatch";
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
