import { scrapedCounter } from "@potluck/service";
import { Gauge, Registry } from "prom-client";
import type { CoordinatorState } from "./state.js";

/**
 * Prometheus metrics, read from the state object at scrape time (nothing is counted twice and
 * the hot heartbeat path only bumps plain numbers). One registry per app so tests can build
 * several side by side.
 */
export function createCoordinatorMetrics(
  state: CoordinatorState,
  rejectedHeartbeats: () => number = () => 0,
): Registry {
  const registry = new Registry();
  new Gauge({
    name: "potluck_coordinator_machines",
    help: "Enrolled machines by liveness state, judged on the coordinator's receive time",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const live = state.liveness();
      this.set({ state: "online" }, live.online);
      this.set({ state: "offline" }, live.offline);
      this.set({ state: "never_seen" }, live.neverSeen);
    },
  });
  new Gauge({
    name: "potluck_coordinator_stale_keys",
    help: "Machines whose reported WireGuard key differs from the roster",
    registers: [registry],
    collect() {
      this.set(state.liveness().staleKeys);
    },
  });
  new Gauge({
    name: "potluck_coordinator_roster_version",
    help: "Roster version (bumped on enrollment, removal and key rotation)",
    registers: [registry],
    collect() {
      this.set(Math.max(0, state.liveness().version));
    },
  });
  const counter = (name: string, help: string, read: () => number) => scrapedCounter(registry, name, help, read);
  counter("potluck_coordinator_heartbeats_total", "Heartbeats accepted", () => state.acceptedHeartbeats);
  counter(
    "potluck_coordinator_heartbeats_unknown_total",
    "Heartbeats from names not on the roster (dropped)",
    () => state.unknownHeartbeats,
  );
  counter(
    "potluck_coordinator_heartbeats_rejected_total",
    "Heartbeats failing the schema or naming another machine than their subject (dropped)",
    rejectedHeartbeats,
  );
  counter("potluck_coordinator_enrollments_total", "Machines enrolled by this process", () => state.enrollments);
  return registry;
}
