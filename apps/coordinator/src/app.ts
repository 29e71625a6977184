import { CoordinatorLimits, errorBody, ErrorCode, toErrorResponse } from "@potluck/protocol";
import { Hono, type Context } from "hono";
import type { Registry } from "prom-client";
import { requireAdmin } from "./admin.js";
import { bodyLimit } from "hono/body-limit";
import { enrollRoutes } from "./routes/enroll.js";
import { machineRoutes, rosterRoutes } from "./routes/machines.js";
import { tokenRoutes } from "./routes/tokens.js";
import type { CoordinatorState } from "./state.js";

export interface CoordinatorDeps {
  startedAt: number;
  state: CoordinatorState;
  /** Required by token creation, removal and key rotation (see admin.ts). */
  adminSecret: string;
  /** Prometheus registry served at /metrics to loopback callers (others need the admin secret). */
  metrics?: Registry;
}

/** The coordinator's HTTP surface, built from injected dependencies (no port, no globals). */
export function buildCoordinatorApp(deps: CoordinatorDeps) {
  const app = new Hono()
    .use(
      bodyLimit({
        maxSize: CoordinatorLimits.bodyBytesMax,
        onError: (c) => c.json(errorBody(ErrorCode.bodyTooLarge, `request body is larger than ${CoordinatorLimits.bodyBytesMax} bytes`, "body"), 413),
      }),
    )
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
  app.notFound((c) => c.json(errorBody(ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    return c.json(body, status as 400);
  });
  return app;
}

/** The TCP peer's address as @hono/node-server hands it over; absent in app.request() tests. */
function fromLoopback(c: Context): boolean {
  const address = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress ?? "";
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

export type CoordinatorApp = ReturnType<typeof buildCoordinatorApp>;
