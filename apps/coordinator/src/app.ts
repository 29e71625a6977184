import { errorBody, ErrorCode, toErrorResponse } from "@potluck/protocol";
import { Hono } from "hono";

export interface CoordinatorDeps {
  startedAt: number;
}

/** The coordinator's HTTP surface, built from injected dependencies (no port, no globals). */
export function buildCoordinatorApp(deps: CoordinatorDeps) {
  const app = new Hono().get("/health", (c) => c.json({ status: "ok", service: "coordinator", uptimeS: (Date.now() - deps.startedAt) / 1000 }));
  app.notFound((c) => c.json(errorBody(ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    return c.json(body, status as 400);
  });
  return app;
}

export type CoordinatorApp = ReturnType<typeof buildCoordinatorApp>;
