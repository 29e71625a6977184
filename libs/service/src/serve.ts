import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Logger } from "./logger.js";

export interface ServeOptions {
  /** 0 picks a free port; the answer says which. */
  port: number;
  hostname: string;
  log?: Logger;
  /** Names the service in the "<name> listening" line that tests and supervisors wait for. */
  name?: string;
  /** Extra fields for that line (database kind, subject root, …). */
  details?: Record<string, unknown>;
}

export interface ServedApp {
  port: number;
  /** Stops accepting, lets requests in flight finish, closes idle keep-alive connections. */
  close(): Promise<void>;
}

/**
 * Listens with @hono/node-server and resolves once the port is bound, so a taken port is a
 * rejected promise the caller can report instead of an 'error' event nobody listens to.
 */
export function serveApp(
  app: { fetch: (request: Request, env?: unknown) => Response | Promise<Response> },
  options: ServeOptions,
): Promise<ServedApp> {
  const { port, hostname, log, name = "service", details = {} } = options;
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname });
    const onError = (error: Error) =>
      reject(new Error(`listening on ${hostname}:${port}: ${error.message}`, { cause: error }));
    server.once("error", onError);
    server.once("listening", () => {
      server.off("error", onError);
      const bound = (server.address() as AddressInfo).port;
      log?.info({ ...details, bind: hostname, port: bound }, `${name} listening`);
      resolve({
        port: bound,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((error) => (error ? fail(error) : done()));
            if ("closeIdleConnections" in server) server.closeIdleConnections();
          }),
      });
    });
  });
}
