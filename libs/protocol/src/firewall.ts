import { z } from "zod";
import { IsoTime, MachineName } from "./common.js";

export const FwRuleState = z.enum(["present", "missing", "not_applicable"]);

export const FwRuleStatus = z.object({
  /** e.g. "ip filter ts-input" or "inet mullvad output" */
  family: z.enum(["ip", "ip6", "inet"]),
  table: z.string(),
  chain: z.string(),
  /** The rule in nft syntax, e.g. "iifname potluck0 accept". */
  rule: z.string(),
  state: FwRuleState,
});
export type FwRuleStatus = z.infer<typeof FwRuleStatus>;

/** GET /status on the fw-watcher and potluck.fw.status.<machine> on NATS. */
export const FwStatus = z.object({
  machine: MachineName,
  interfaceName: z.string(),
  vpns: z.object({ tailscale: z.boolean(), mullvad: z.boolean() }),
  rules: z.array(FwRuleStatus),
  intact: z.boolean(),
  lastReapplyAt: IsoTime.nullable(),
  reapplyCount: z.number().int().nonnegative(),
  lastError: z.string().nullable(),
  checkedAt: IsoTime,
});
export type FwStatus = z.infer<typeof FwStatus>;
