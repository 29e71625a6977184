import { errorBody, ErrorCode, toErrorResponse } from "@potluck/protocol";
import { Hono } from "hono";

export interface LedgerDeps {
  startedAt: number;
}

/** The ledger's HTTP surface, built from injected dependencies (no port, no globals). */
export function buildLedgerApp(deps: LedgerDeps) {
  const app = new Hono().get("/health", (c) => c.json({ status: "ok", service: "ledger", uptimeS: (Date.now() - deps.startedAt) / 1000 }));
  app.notFound((c) => c.json(errorBody(ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    return c.json(body, status as 400);
  });
  return app;
}

export type LedgerApp = ReturnType<typeof buildLedgerApp>;
