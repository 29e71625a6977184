import { jsonErrors, limitBody, type Logger } from "@potluck/service";
import { Hono } from "hono";
import type { Registry } from "prom-client";
import type { Witness } from "./anchors/witness.js";
import type { WriteAuth } from "./auth/writers.js";
import type { Ledger } from "./ledger/service.js";
import { accountRoutes, balanceRoutes } from "./routes/balances.js";
import { eventRoutes } from "./routes/events.js";
import { logRoutes } from "./routes/log.js";
import { operatorRoutes } from "./routes/operator.js";
import { witnessRoutes } from "./routes/witness.js";

export interface LedgerDeps {
  startedAt: number;
  ledger: Ledger;
  /** Present when this process also acts as a witness for another log. */
  witness?: Witness;
  metrics?: Registry;
  /** Who may write over HTTP (see auth/writers.ts); without it every write is refused. */
  writeAuth?: WriteAuth;
  /** Where internal errors (500s) are logged with their cause. */
  log?: Logger;
}

/**
 * No ledger request carries more than one event or one checkpoint note. Every body is bounded to
 * this while it streams in, before a signature check (auth/writers.ts) or a validator reads it;
 * routes bound their own bodies more tightly (events: LedgerLimits.eventBodyBytesMax).
 */
export const requestBodyBytesMax = 64 * 1024;

/** The ledger's HTTP surface, built from injected dependencies (no port, no globals). */
export function buildLedgerApp(deps: LedgerDeps) {
  const app = new Hono()
    .use(limitBody({ bytesMax: requestBodyBytesMax }))
    .get("/health", (c) => c.json({ status: "ok", service: "ledger", uptimeS: (Date.now() - deps.startedAt) / 1000 }))
    .route("/v1/events", eventRoutes(deps.ledger, deps.writeAuth))
    .route("/v1/balances", balanceRoutes(deps.ledger))
    .route("/v1/accounts", accountRoutes(deps.ledger))
    .route("/v1/log", logRoutes(deps.ledger, deps.writeAuth))
    .route("/v1", operatorRoutes(deps.ledger));
  if (deps.witness !== undefined) app.route("/v1/witness", witnessRoutes(deps.witness));
  const metrics = deps.metrics;
  if (metrics !== undefined)
    app.get("/metrics", async (c) => c.text(await metrics.metrics(), 200, { "content-type": metrics.contentType }));
  return jsonErrors(app, { log: deps.log });
}

export type LedgerApp = ReturnType<typeof buildLedgerApp>;
