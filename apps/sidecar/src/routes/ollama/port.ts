import { loopbackGuard, messageOf, nodeRemoteAddress, serveApp, type Logger, type ServedApp } from "@potluck/service";
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** How long a program already on the port has to answer GET /api/version before it counts as "not Ollama". */
export const ollamaProbeMsMax = 1_500;

export interface OllamaPortOptions {
  /** POTLUCK_OLLAMA_PORT; 0: off. */
  port: number;
  /** The sidecar's own port, which serves the same API whatever happens here (named in the log line). */
  sidecarPort: number;
  /** The Ollama routes (routes/ollama/index.ts), as the sidecar's app mounts them. */
  routes: Hono<any, any, any>;
  apiKey?: string;
  log: Logger;
}

export interface OllamaPort {
  /** The bound port; undefined when off or when another program holds it. */
  port: number | undefined;
  close(): Promise<void>;
}

/**
 * Serves the Ollama API alone on 127.0.0.1:POTLUCK_OLLAMA_PORT (11434 by default, where apps built
 * for Ollama look), behind the same loopback guard as the sidecar's port. If Ollama itself already
 * answers there, Potluck says so in one line and leaves it be; if another program holds the port,
 * likewise. Neither stops the sidecar: its own port serves the same routes.
 */
export async function startOllamaPort(options: OllamaPortOptions): Promise<OllamaPort> {
  const { port, sidecarPort, log } = options;
  const off: OllamaPort = { port: undefined, close: async () => undefined };
  if (port === 0) return off;
  const elsewhere = `Potluck's Ollama API stays on its own port ${sidecarPort}: OLLAMA_HOST=http://127.0.0.1:${sidecarPort}`;
  // Binding it here first would make the sidecar's own listener fail on the same port.
  if (port === sidecarPort) {
    log.info(`POTLUCK_OLLAMA_PORT is the sidecar's own port ${port}, which serves Ollama's API already`);
    return off;
  }
  const holder = await whoAnswers(port);
  if (holder === "ollama") {
    log.warn(`Ollama is already running on 127.0.0.1:${port}; ${elsewhere}`);
    return off;
  }
  if (holder !== "nobody") {
    log.warn(`127.0.0.1:${port} is taken by another program (${holder}), not Ollama; ${elsewhere}`);
    return off;
  }
  let served: ServedApp;
  try {
    served = await serveApp(ollamaPortApp(options), { port, hostname: "127.0.0.1", log, name: "Ollama API" });
  } catch (error) {
    log.warn(`127.0.0.1:${port} could not be used for Ollama's API (${messageOf(error)}); ${elsewhere}`);
    return off;
  }
  return { port: served.port, close: () => served.close() };
}

/** The second port's app: Ollama's routes and its `GET /` greeting, nothing else of the sidecar's. */
export function ollamaPortApp({ routes, apiKey }: Pick<OllamaPortOptions, "routes" | "apiKey">) {
  const guard = loopbackGuard({
    remoteAddress: nodeRemoteAddress,
    ...(apiKey === undefined ? {} : { apiKey }),
    what: "Potluck's Ollama API",
  });
  const app = new Hono()
    // The guard answers in Potluck's shape; Ollama clients read a string `error`, so it is reshaped.
    .use(async (c, next) => {
      const refusal = await guard(c, next);
      if (!(refusal instanceof Response)) return;
      const body = (await refusal.json()) as { error?: { message?: string } };
      return c.json({ error: body.error?.message ?? "refused" }, refusal.status as ContentfulStatusCode);
    })
    // Apps probe the root before anything else and look for this sentence.
    .get("/", (c) => c.text("Ollama is running"))
    .route("/", routes);
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path} on Potluck's Ollama API` }, 404));
  return app;
}

/**
 * Who holds 127.0.0.1:port: "nobody" (the connection is refused), "ollama" (GET /api/version
 * answers with a version), or a few words on what answered instead.
 */
async function whoAnswers(port: number): Promise<"nobody" | "ollama" | string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/version`, { signal: AbortSignal.timeout(ollamaProbeMsMax) });
    const body = (await res.json().catch(() => undefined)) as { version?: unknown; potluck?: unknown } | undefined;
    if (res.ok && typeof body?.potluck === "string") return "another Potluck sidecar's Ollama API";
    if (res.ok && typeof body?.version === "string") return "ollama";
    return `it answered GET /api/version with HTTP ${res.status}`;
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === "ECONNREFUSED") return "nobody";
    if ((error as Error).name === "TimeoutError")
      return `it did not answer GET /api/version within ${ollamaProbeMsMax} ms`;
    return `GET /api/version failed: ${messageOf(error)}`;
  }
}
