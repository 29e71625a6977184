import {
  ErrorCode,
  FwReapplyRequest,
  PotluckHttpError,
  zodHook,
  type FwReapplyResult,
  type FwStatus,
} from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import type { Registry } from "prom-client";
import { WatcherBusyError } from "../watcher.js";

export interface StatusDeps {
  status: () => FwStatus;
  /** The status from a fresh read of the ruleset (no repair). */
  refresh: () => Promise<FwStatus>;
  reapply: (requestedBy: string) => Promise<FwReapplyResult>;
  registry: Registry;
}

/**
 * GET /status (?fresh=1 reads the ruleset first), POST /reapply (the consent path diagnostics uses) and GET /metrics.
 */
export function statusRoutes(deps: StatusDeps) {
  return new Hono()
    .get("/status", async (c) => {
      if (c.req.query("fresh") !== "1") return c.json(deps.status());
      try {
        return c.json(await deps.refresh());
      } catch (error) {
        const reason =
          error instanceof WatcherBusyError
            ? error.message
            : `reading the ruleset: ${error instanceof Error ? error.message : String(error)}`;
        throw new PotluckHttpError(503, ErrorCode.unavailable, reason, undefined, { cause: error });
      }
    })
    .post("/reapply", validator("json", zodHook(FwReapplyRequest)), async (c) => {
      const { requestedBy = "unnamed client" } = c.req.valid("json");
      try {
        return c.json(await deps.reapply(requestedBy));
      } catch (error) {
        if (error instanceof WatcherBusyError) throw new PotluckHttpError(503, ErrorCode.unavailable, error.message);
        // nft failing (no permission, a table vanishing mid-batch) is the firewall's state, not a bug here.
        throw new PotluckHttpError(
          503,
          ErrorCode.unavailable,
          `reapplying accept rules: ${error instanceof Error ? error.message : String(error)}`,
          undefined,
          { cause: error },
        );
      }
    })
    .get("/metrics", async (c) =>
      c.body(await deps.registry.metrics(), 200, { "content-type": deps.registry.contentType }),
    );
}
