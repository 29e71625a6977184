import {
  DiagnosticsFixRequest,
  DiagnosticsQuery,
  ErrorCode,
  MachineName,
  PotluckHttpError,
  zodHook,
  type DiagnosticsFixResult,
  type DiagnosticsOverview,
  type DiagnosticsReport,
  type FixAction,
} from "@potluck/protocol";
import { isLoopbackHost } from "@potluck/service";
import { Hono } from "hono";
import { validator } from "hono/validator";

/** What the routes need from diagnostics; `Diagnostics` from @potluck/diagnostics implements it. */
export interface DiagnosticsService {
  overview(options: CheckOptions): Promise<DiagnosticsOverview>;
  check(peer: string, options: CheckOptions): Promise<DiagnosticsReport>;
  applyFix(action: FixAction): Promise<DiagnosticsFixResult>;
}

const PeerParam = MachineName;

/**
 * GET /diagnostics (every path), GET /diagnostics/:peer (one path) and POST /diagnostics/fix (an
 * offered fix, with consent). Loopback only: the peer-access middleware keeps them off the mesh.
 */
export function diagnosticsRoutes(service: DiagnosticsService) {
  return new Hono()
    .get("/diagnostics", validator("query", zodHook(DiagnosticsQuery)), async (c) => {
      return c.json(await service.overview(checkOptions(c.req.valid("query"))));
    })
    .get("/diagnostics/:peer", validator("query", zodHook(DiagnosticsQuery)), async (c) => {
      const peer = PeerParam.safeParse(c.req.param("peer"));
      if (!peer.success)
        throw new PotluckHttpError(
          400,
          ErrorCode.invalidRequest,
          `peer: ${peer.error.issues[0]?.message ?? "invalid machine name"}`,
          "peer",
        );
      return c.json(await service.check(peer.data, checkOptions(c.req.valid("query"))));
    })
    .post("/diagnostics/fix", validator("json", zodHook(DiagnosticsFixRequest)), async (c) => {
      // A page on another site cannot reach this (JSON needs a CORS preflight nobody answers), and a
      // DNS-rebound name is refused here: a firewall change needs a loopback Host.
      const host = c.req.header("host");
      if (!isLoopbackHost(host)) {
        throw new PotluckHttpError(
          403,
          ErrorCode.forbidden,
          `fixes are applied only for requests to a loopback host, not ${host ?? "(no Host header)"}`,
          "host",
        );
      }
      const result = await service.applyFix(c.req.valid("json").action);
      return c.json(result, result.ok ? 200 : 502);
    });
}

/** The query as @potluck/diagnostics' CheckOptions. */
interface CheckOptions {
  forceFresh?: boolean;
  model?: string;
  loadModels?: boolean;
}

function checkOptions(query: DiagnosticsQuery): CheckOptions {
  const options: CheckOptions = {
    forceFresh: query.fresh === "1" || query.fresh === "true",
  };
  if (query.model !== undefined) options.model = query.model;
  if (query.load === "0" || query.load === "false") options.loadModels = false;
  return options;
}
