import { Counter, type Registry } from "prom-client";

/**
 * A Prometheus counter read from a running total at scrape time: services keep plain numbers on
 * their hot paths (no metric calls per request), and the counter catches up when it is scraped.
 * `read` must never go down (a process-lifetime total).
 */
export function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read();
      this.inc(now - seen);
      seen = now;
    },
  });
}
