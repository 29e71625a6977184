import { ErrorCode, FwReapplyRequest, PotluckHttpError, zodHook, type FwReapplyResult, type FwStatus } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import type { Registry } from "prom-client";
import { WatcherBusyError } from "../watcher.js";

export interface StatusDeps {
  status: () => FwStatus;
  reapply: (requestedBy: string) => Promise<FwReapplyResult>;
  registry: Registry;
}

/** GET /status, POST /reapply (the consent path diagnostics uses) and GET /metrics. */
export function statusRoutes(deps: StatusDeps) {
  return new Hono()
    .get("/status", (c) => c.json(deps.status()))
    .post("/reapply", validator("json", zodHook(FwReapplyRequest)), async (c) => {
      const { requestedBy = "unnamed client" } = c.req.valid("json");
      try {
        return c.json(await deps.reapply(requestedBy));
      } catch (error) {
        if (error instanceof WatcherBusyError) throw new PotluckHttpError(503, ErrorCode.unavailable, error.message);
        // nft failing (no permission, a table vanishing mid-batch) is the firewall's state, not a bug here.
        throw new PotluckHttpError(503, ErrorCode.unavailable, `reapplying accept rules: ${error instanceof Error ? error.message : String(error)}`, undefined, { cause: error });
      }
    })
    .get("/metrics", async (c) => c.body(await deps.registry.metrics(), 200, { "content-type": deps.registry.contentType }));
}
