import { scrapedCounter } from "@potluck/service";
import { Counter, Gauge, Registry } from "prom-client";
import { outboxCounts } from "./anchors/outbox.js";
import type { Ledger } from "./ledger/service.js";

/** Prometheus metrics read from the ledger at scrape time; one registry per app instance. */
export function createLedgerMetrics(ledger: Ledger): Registry {
  const registry = new Registry();
  const counter = (name: string, help: string, read: () => number) => scrapedCounter(registry, name, help, read);
  counter(
    "potluck_ledger_events_applied_total",
    "Events appended to the chain by this process",
    () => ledger.stats.applied,
  );
  counter(
    "potluck_ledger_events_duplicate_total",
    "Events answered as already applied (same id, same payload)",
    () => ledger.stats.duplicates,
  );
  counter(
    "potluck_ledger_events_parked_total",
    "Usage messages parked by this process (malformed, or failing to append alone): see GET /v1/parked",
    () => ledger.stats.parked,
  );
  const seenRejected = new Map<string, number>();
  new Counter({
    name: "potluck_ledger_events_rejected_total",
    help: "Events refused (recorded in the rejections table), by reason code",
    labelNames: ["code"],
    registers: [registry],
    collect() {
      for (const [code, n] of ledger.stats.rejected) {
        this.inc({ code }, n - (seenRejected.get(code) ?? 0));
        seenRejected.set(code, n);
      }
    },
  });
  new Gauge({
    name: "potluck_ledger_log_size",
    help: "Entries in the log (the head)",
    registers: [registry],
    async collect() {
      this.set(await ledger.log.size());
    },
  });
  new Gauge({
    name: "potluck_ledger_checkpoint_size",
    help: "Log size of the newest signed checkpoint",
    registers: [registry],
    async collect() {
      this.set((await ledger.latestCheckpoint())?.size ?? 0);
    },
  });
  new Gauge({
    name: "potluck_ledger_anchor_outbox",
    help: "Anchor outbox rows by state (pending rows mean an anchor is behind, never that metering stopped)",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const counts = await outboxCounts(ledger.db);
      for (const state of ["pending", "done", "failed"]) this.set({ state }, counts[state] ?? 0);
    },
  });
  return registry;
}
