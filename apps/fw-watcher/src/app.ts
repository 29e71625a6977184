import { errorBody, ErrorCode, PotluckHttpError, toErrorResponse } from "@potluck/protocol";
import { Hono } from "hono";
import { statusRoutes, type StatusDeps } from "./routes/status.js";

export interface FwWatcherDeps extends StatusDeps {
  startedAt: number;
}

/** Host names a loopback request carries; anything else is a DNS-rebinding page or a misroute. */
const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** The fwWatcher's HTTP surface, built from injected dependencies (no port, no globals). */
export function buildFwWatcherApp(deps: FwWatcherDeps) {
  const app = new Hono()
    .use(async (c, next) => {
      // The server binds 127.0.0.1 only; this refuses browsers tricked by DNS rebinding into
      // talking to it under another name (POST /reapply changes the firewall).
      const host = (c.req.header("host") ?? "127.0.0.1").replace(/:\d+$/, "");
      if (!loopbackHosts.has(host)) throw new PotluckHttpError(403, ErrorCode.forbidden, `the fw-watcher answers loopback names only, not ${JSON.stringify(host)}`, "host");
      await next();
    })
    .get("/health", (c) => c.json({ status: "ok", service: "fw-watcher", uptimeS: (Date.now() - deps.startedAt) / 1000 }))
    .route("/", statusRoutes(deps));
  app.notFound((c) => c.json(errorBody(ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    return c.json(body, status as 400);
  });
  return app;
}

export type FwWatcherApp = ReturnType<typeof buildFwWatcherApp>;
