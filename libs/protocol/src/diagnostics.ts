import { z } from "zod";
import { IsoTime, MachineName } from "./common.js";

/** The layers between a prompt and its first token, in dependency order. */
export const LayerCode = z.enum([
  "local-sidecar",
  "coordinator",
  "roster",
  "tunnel",
  "path",
  "data-plane",
  "capabilities",
  "model-runtime",
  "first-token",
]);
export type LayerCode = z.infer<typeof LayerCode>;

export const Severity = z.enum(["low", "medium", "high"]);
export type Severity = z.infer<typeof Severity>;

export const LayerStatus = z.enum(["ok", "failed", "suppressed", "pending", "warning"]);
export type LayerStatus = z.infer<typeof LayerStatus>;

export const LayerResult = z.object({
  code: LayerCode,
  title: z.string(),
  severity: Severity,
  status: LayerStatus,
  /** A named failure, e.g. "firewall-drop", "mtu-blackhole", "connection-refused". */
  failure: z.string().optional(),
  message: z.string(),
  /** A concrete fix: a command or a setting, with machine and interface filled in. */
  fix: z.string().optional(),
  /** When suppressed: the upstream layer whose failure explains this one. */
  suppressedBy: LayerCode.optional(),
  /** The fix can be applied for the user with consent (e.g. fw-watcher reapply). */
  offerFix: z.enum(["fw-reapply"]).optional(),
  latencyMs: z.number().nonnegative().optional(),
  checkedAt: IsoTime,
});
export type LayerResult = z.infer<typeof LayerResult>;

export const DiagnosticsReport = z.object({
  from: MachineName,
  peer: MachineName.nullable(),
  /** True only when the path can serve a prompt right now. */
  usable: z.boolean(),
  firstFailure: LayerCode.nullable(),
  layers: z.array(LayerResult),
  generatedAt: IsoTime,
});
export type DiagnosticsReport = z.infer<typeof DiagnosticsReport>;
