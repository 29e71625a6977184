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

/**
 * ok: checked and passed. warning: passed with a caveat (e.g. relayed path). pending: the check
 * failed but has not yet persisted for its time-to-visible, so it is not shown as a failure.
 * failed: a visible failure. suppressed: not checked because an upstream layer is broken.
 * skipped: does not apply on this path (e.g. no mesh hop when the peer is this machine).
 */
export const LayerStatus = z.enum(["ok", "failed", "suppressed", "pending", "warning", "skipped"]);
export type LayerStatus = z.infer<typeof LayerStatus>;

/** Fixes the sidecar can apply for the user, only after they consent. */
export const FixAction = z.enum(["fw-reapply"]);
export type FixAction = z.infer<typeof FixAction>;

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
  offerFix: FixAction.optional(),
  /** When pending or failed: how long the failure has persisted so far. */
  brokenForMs: z.number().nonnegative().optional(),
  /** The layer's time-to-visible: a failure shorter than this is reported as pending. */
  timeToVisibleMs: z.number().nonnegative().optional(),
  latencyMs: z.number().nonnegative().optional(),
  checkedAt: IsoTime,
});
export type LayerResult = z.infer<typeof LayerResult>;

export const DiagnosticsReport = z.object({
  from: MachineName,
  peer: MachineName.nullable(),
  /** True only when the path can serve a prompt right now. */
  usable: z.boolean(),
  /** The first layer with a visible failure; null when none is visible (pending ones are not). */
  firstFailure: LayerCode.nullable(),
  layers: z.array(LayerResult),
  generatedAt: IsoTime,
  /** True when this answer came from the short result cache rather than a new probe. */
  cached: z.boolean().optional(),
  /** The model the model-runtime and first-token layers checked, when one was chosen. */
  model: z.string().optional(),
});
export type DiagnosticsReport = z.infer<typeof DiagnosticsReport>;

/** GET /diagnostics: one report per path this machine can route a prompt to (itself included). */
export const DiagnosticsOverview = z.object({
  from: MachineName,
  reports: z.array(DiagnosticsReport),
  generatedAt: IsoTime,
});
export type DiagnosticsOverview = z.infer<typeof DiagnosticsOverview>;

/** POST /diagnostics/fix: apply an offered fix. `consent` records that a person agreed. */
export const DiagnosticsFixRequest = z.object({
  action: FixAction,
  consent: z.literal(true, "expected consent: true"),
});
export type DiagnosticsFixRequest = z.infer<typeof DiagnosticsFixRequest>;

export const DiagnosticsFixResult = z.object({
  action: FixAction,
  ok: z.boolean(),
  message: z.string(),
});
export type DiagnosticsFixResult = z.infer<typeof DiagnosticsFixResult>;

/** Query of GET /diagnostics and GET /diagnostics/:peer. */
export const DiagnosticsQuery = z.object({
  /** "1" skips the short result cache (a router about to send a prompt uses it). */
  fresh: z.enum(["0", "1", "true", "false"], "expected fresh=1 or fresh=0").optional(),
  /** Check this model instead of the peer's first ready one. */
  model: z.string().min(1).max(256).optional(),
  /**
   * "0": do not load a model that is only available just to check its first token (the household
   * page refreshes every few seconds and would keep every model loaded); default "1", as a prompt would.
   */
  load: z.enum(["0", "1", "true", "false"], "expected load=1 or load=0").optional(),
});
export type DiagnosticsQuery = z.infer<typeof DiagnosticsQuery>;
