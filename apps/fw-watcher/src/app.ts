import { jsonErrors, loopbackGuard, type Logger } from "@potluck/service";
import { Hono } from "hono";
import { statusRoutes, type StatusDeps } from "./routes/status.js";

export interface FwWatcherDeps extends StatusDeps {
  startedAt: number;
  /** Where internal errors (500s) are logged with their cause. */
  log?: Logger;
}

/** The fwWatcher's HTTP surface, built from injected dependencies (no port, no globals). */
export function buildFwWatcherApp(deps: FwWatcherDeps) {
  const app = new Hono()
    // The server binds 127.0.0.1 only; this refuses browsers tricked by DNS rebinding into
    // talking to it under another name, or pages of another origin (POST /reapply changes the firewall).
    .use(loopbackGuard({ what: "the fw-watcher" }))
    .get("/health", (c) =>
      c.json({ status: "ok", service: "fw-watcher", uptimeS: (Date.now() - deps.startedAt) / 1000 }),
    )
    .route("/", statusRoutes(deps));
  return jsonErrors(app, { log: deps.log });
}

export type FwWatcherApp = ReturnType<typeof buildFwWatcherApp>;
