import { CoordinatorLimits, errorBody, ErrorCode } from "@potluck/protocol";
import {
  isLoopbackAddress,
  jsonErrors,
  limitBody,
  loopbackNameRefusal,
  nodeRemoteAddress,
  type Logger,
} from "@potluck/service";
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
    .get("/health", (c) =>
      c.json({ status: "ok", service: "coordinator", uptimeS: (Date.now() - deps.startedAt) / 1000 }),
    )
    .route("/v1/tokens", tokenRoutes(deps.state, deps.adminSecret))
    .route("/v1/enroll", enrollRoutes(deps.state))
    .route("/v1/roster", rosterRoutes(deps.state))
    .route("/v1/machines", machineRoutes(deps.state, deps.adminSecret))
    .get("/metrics", async (c) => {
      if (!fromLoopback(c)) requireAdmin(deps.adminSecret, c.req.raw.headers);
      const registry = deps.metrics;
      if (registry === undefined)
        return c.json(errorBody(ErrorCode.notFound, "metrics are not enabled in this process"), 404);
      return c.body(await registry.metrics(), 200, { "content-type": registry.contentType });
    });
  return jsonErrors(app, { log: deps.log });
}

/**
 * A local scrape needs no secret: the caller is on loopback under a loopback Host and Origin. The
 * address alone would let a DNS-rebound web page in the browser of whoever sits at the hub read it.
 */
function fromLoopback(c: Context): boolean {
  return isLoopbackAddress(nodeRemoteAddress(c)) && loopbackNameRefusal(c) === undefined;
}

export type CoordinatorApp = ReturnType<typeof buildCoordinatorApp>;
