import { CoordinatorLimits, errorBody, ErrorCode } from "@potluck/protocol";
import { isLoopbackAddress, jsonErrors, limitBody, type Logger } from "@potluck/service";
import { Hono, type Context } from "hono";
import type { Registry } from "prom-client";
import { requireAdmin } from "./admin.js";
import { enrollRoutes } from "./routes/enroll.js";
import { machineRoutes, rosterRoutes } from "./routes/machines.js";
import { tokenRoutes } from "./routes/tokens.js";
import { signAnswers } from "./sign-answers.js";
import type { CoordinatorKey } from "./signing-key.js";
import type { CoordinatorState } from "./state.js";

export interface CoordinatorDeps {
  startedAt: number;
  state: CoordinatorState;
  /** Required by token creation, removal and key rotation (see admin.ts). */
  adminSecret: string;
  /** Signs every answer under /v1/ (see signing-key.ts). */
  signingKey: CoordinatorKey;
  /** Prometheus registry served at /metrics to loopback callers (others need the admin secret). */
  metrics?: Registry;
  /** Where internal errors (500s) are logged with their cause. */
  log?: Logger;
}

/** The coordinator's HTTP surface, built from injected dependencies (no port, no globals). */
export function buildCoordinatorApp(deps: CoordinatorDeps) {
  const app = new Hono()
    .use(limitBody({ bytesMax: CoordinatorLimits.bodyBytesMax }))
    .use("/v1/*", signAnswers(deps.signingKey))
    .get("/health", (c) => c.json({ status: "ok", service: "coordinator", uptimeS: (Date.now() - deps.startedAt) / 1000 }))
    .route("/v1/tokens", tokenRoutes(deps.state, deps.adminSecret))
    .route("/v1/enroll", enrollRoutes(deps.state))
    .route("/v1/roster", rosterRoutes(deps.state))
    .route("/v1/machines", machineRoutes(deps.state, deps.adminSecret))
    .get("/metrics", async (c) => {
      if (!fromLoopback(c)) requireAdmin(deps.adminSecret, c.req.raw.headers);
      const registry = deps.metrics;
      if (registry === undefined) return c.json(errorBody(ErrorCode.notFound, "metrics are not enabled in this process"), 404);
      return c.body(await registry.metrics(), 200, { "content-type": registry.contentType });
    });
  return jsonErrors(app, { log: deps.log });
}

/** The TCP peer's address as @hono/node-server hands it over; absent in app.request() tests. */
function fromLoopback(c: Context): boolean {
  return isLoopbackAddress((c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress);
}

export type CoordinatorApp = ReturnType<typeof buildCoordinatorApp>;
