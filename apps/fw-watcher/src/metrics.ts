import type { FwStatus } from "@potluck/protocol";
import { Counter, Gauge, Registry } from "prom-client";

/** Prometheus metrics of one watcher, in their own registry (tests build several side by side). */
export function createMetrics() {
  const registry = new Registry();
  const reapplies = new Counter({
    name: "potluck_fw_reapply_total",
    help: "Times missing accept rules were reinserted",
    registers: [registry],
  });
  const errors = new Counter({
    name: "potluck_fw_errors_total",
    help: "Checks or reapplies that failed (retried next tick)",
    registers: [registry],
  });
  const lastCheck = new Gauge({
    name: "potluck_fw_last_check_timestamp_seconds",
    help: "Unix time of the last successful ruleset check",
    registers: [registry],
  });
  const missing = new Gauge({
    name: "potluck_fw_rules_missing",
    help: "Applicable accept rules missing at the last check",
    registers: [registry],
  });
  const vpn = new Gauge({
    name: "potluck_fw_vpn_detected",
    help: "1 when that VPN's firewall is present",
    labelNames: ["vpn"],
    registers: [registry],
  });
  let countedReapplies = 0;

  /** Folds a status into the metrics; counters only move forward by the status' own counts. */
  function observe(status: FwStatus): void {
    if (status.reapplyCount > countedReapplies) {
      reapplies.inc(status.reapplyCount - countedReapplies);
      countedReapplies = status.reapplyCount;
    }
    // The watcher reports each failure exactly once, so every status carrying an error is one error.
    if (status.lastError !== null) errors.inc();
    if (status.lastError === null) {
      lastCheck.set(Date.parse(status.checkedAt) / 1000);
      missing.set(status.rules.filter((r) => r.state === "missing").length);
      vpn.set({ vpn: "tailscale" }, status.vpns.tailscale ? 1 : 0);
      vpn.set({ vpn: "mullvad" }, status.vpns.mullvad ? 1 : 0);
    }
  }
  return { registry, observe };
}
export type FwMetrics = ReturnType<typeof createMetrics>;
