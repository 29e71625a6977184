import { z } from "zod";
import { IsoTime, MachineName } from "./common.js";

export const FwRuleState = z.enum(["present", "missing", "not_applicable"]);
export type FwRuleState = z.infer<typeof FwRuleState>;

/** The VPN firewalls the watcher knows how to coexist with. */
export const FwVpn = z.enum(["tailscale", "mullvad"]);
export type FwVpn = z.infer<typeof FwVpn>;

export const FwRuleStatus = z.object({
  /** e.g. "ip filter ts-input" or "inet mullvad output" */
  family: z.enum(["ip", "ip6", "inet"]),
  table: z.string(),
  chain: z.string(),
  /** The rule in nft syntax, e.g. "iifname potluck0 accept". */
  rule: z.string(),
  state: FwRuleState,
  /** Why a rule is missing or not applicable, e.g. "shadowed by a drop rule above it". */
  detail: z.string().optional(),
});
export type FwRuleStatus = z.infer<typeof FwRuleStatus>;

/** One reading of the ruleset: `potluck-fw-watcher --check --json` prints this. */
export const FwCheckReport = z.object({
  interfaceName: z.string(),
  vpns: z.object({ tailscale: z.boolean(), mullvad: z.boolean() }),
  rules: z.array(FwRuleStatus),
  /** True when every applicable rule is present (also when no VPN is present: nothing is owed). */
  intact: z.boolean(),
  checkedAt: IsoTime,
});
export type FwCheckReport = z.infer<typeof FwCheckReport>;

/** GET /status on the fw-watcher and potluck.fw.status.<machine> on NATS. */
export const FwStatus = FwCheckReport.extend({
  machine: MachineName,
  lastReapplyAt: IsoTime.nullable(),
  reapplyCount: z.number().int().nonnegative(),
  lastError: z.string().nullable(),
});
export type FwStatus = z.infer<typeof FwStatus>;

/**
 * POST /reapply on the fw-watcher: the consent path diagnostics uses. The explicit `consent`
 * field records that a person agreed to the firewall change (and, being JSON, it cannot be sent
 * by a plain cross-site form).
 */
export const FwReapplyRequest = z.object({
  consent: z.literal(true, "expected consent: true"),
  /** Who asked, for the log, e.g. "potluck doctor". */
  requestedBy: z.string().min(1).max(64).optional(),
});
export type FwReapplyRequest = z.infer<typeof FwReapplyRequest>;

export const FwReapplyResult = z.object({
  /** How many accept rules were inserted (0 when all were already present). */
  added: z.number().int().nonnegative(),
  /** How many stray copies of its own rules were removed (duplicates, edited copies). */
  removed: z.number().int().nonnegative(),
  status: FwStatus,
});
export type FwReapplyResult = z.infer<typeof FwReapplyResult>;
