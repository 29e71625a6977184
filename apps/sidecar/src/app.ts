import { toErrorResponse, errorBody, ErrorCode, type Health } from "@potluck/protocol";
import { Hono } from "hono";
import { peerAccess } from "./middleware/peer-access.js";

export interface SidecarDeps {
  machine: string;
  startedAt: number;
  /** True once models and the embedder have loaded; /health says "warming" until then. */
  isWarm: () => boolean;
  /** The caller's address; `app.request()` in tests has none and counts as loopback-less. */
  remoteAddress: Parameters<typeof peerAccess>[0]["remoteAddress"];
}

/** The sidecar's HTTP surface, built from injected dependencies (no port, no globals). */
export function buildSidecarApp(deps: SidecarDeps) {
  const app = new Hono()
    .use(peerAccess({ remoteAddress: deps.remoteAddress }))
    .get("/health", (c) => {
      const body: Health = {
        status: deps.isWarm() ? "ok" : "warming",
        machine: deps.machine,
        uptimeS: (Date.now() - deps.startedAt) / 1000,
      };
      return c.json(body);
    });
  app.notFound((c) => c.json(errorBody(ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    return c.json(body, status as 400);
  });
  return app;
}

export type SidecarApp = ReturnType<typeof buildSidecarApp>;
