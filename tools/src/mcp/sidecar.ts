import { Defaults, ErrorBody } from "@potluck/protocol";
import { unreachableMessage } from "../lib/unreachable.js";

/**
 * The local sidecar as the MCP tools reach it: the same base URL rule as `potluck ask` (an explicit
 * URL, else 127.0.0.1:$POTLUCK_PORT, else the default port), and POTLUCK_API_KEY as a bearer token
 * when set, so a server pointed at another machine's sidecar (--url) is let in by its key. On
 * loopback the sidecar ignores a key it does not need.
 */
export interface SidecarTarget {
  base: string;
  apiKey: string | undefined;
}

export function sidecarTarget(url: string | undefined, env: NodeJS.ProcessEnv = process.env): SidecarTarget {
  const base = (url ?? `http://127.0.0.1:${env.POTLUCK_PORT ?? Defaults.sidecarPort}`).replace(/\/$/, "");
  const apiKey =
    env.POTLUCK_API_KEY === undefined || env.POTLUCK_API_KEY.length === 0 ? undefined : env.POTLUCK_API_KEY;
  return { base, apiKey };
}

/** A failed sidecar call in words an agent can act on: the sidecar's own message, or why it was not reached. */
export class SidecarError extends Error {
  override name = "SidecarError";
}

/**
 * One JSON request to the sidecar. A non-2xx answer throws SidecarError carrying the sidecar's
 * message and code; an unreachable sidecar throws one that says to start it.
 */
export async function sidecarJson(
  target: SidecarTarget,
  method: "GET" | "POST",
  path: string,
  options: { body?: unknown; timeoutMs: number },
): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (target.apiKey !== undefined) headers.authorization = `Bearer ${target.apiKey}`;
  let res: Response;
  try {
    res = await fetch(`${target.base}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    if (error instanceof Error && error.name === "TimeoutError")
      throw new SidecarError(
        `the sidecar at ${target.base} did not answer ${method} ${path} within ${options.timeoutMs / 1000} s`,
      );
    throw new SidecarError(unreachableMessage("sidecar", target.base, error));
  }
  const payload: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const parsed = ErrorBody.safeParse(payload);
    throw new SidecarError(
      parsed.success
        ? `the sidecar refused ${method} ${path}: ${parsed.data.error.message} (HTTP ${res.status} ${parsed.data.error.code})`
        : `the sidecar answered ${method} ${path} with HTTP ${res.status}`,
    );
  }
  return payload;
}
