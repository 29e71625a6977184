import type { FwCheckReport, FwReapplyResult, FwStatus } from "@potluck/protocol";
import type { Firewall } from "./firewall.js";

/** The slice of a pino logger the watcher uses (tests pass a recorder). */
export interface WatchLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WatcherOptions {
  firewall: Firewall;
  machine: string;
  log: WatchLog;
  intervalMs: number;
  /** Called with every new status (after each check); publishing and metrics hang off this. */
  onStatus?: (status: FwStatus, changed: boolean) => void;
  now?: () => Date;
}

export type ReapplyTrigger = "watch" | "request";

/** Operations allowed to wait for nft at once; a flood of POST /reapply is refused beyond this. */
const pendingOpsMax = 4;

export class WatcherBusyError extends Error {
  override name = "WatcherBusyError";
}

/**
 * Checks the rules every interval and reinserts what a VPN reconnect erased. Every nft
 * operation (ticks and requested reapplies) runs one at a time, so two reapplies can never
 * race each other into duplicate rules. An error is logged and kept in the status; the next
 * tick simply tries again, so a transient failure never ends the loop.
 */
export class FwWatcher {
  private readonly opts: WatcherOptions;
  private last: FwCheckReport | undefined;
  private lastReapplyAt: string | null = null;
  private reapplyCount = 0;
  private lastError: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private pendingOps = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastKey = "";
  private lastVpnKey = "";

  constructor(opts: WatcherOptions) {
    this.opts = opts;
  }

  status(): FwStatus {
    const { firewall, machine } = this.opts;
    const report = this.last ?? {
      interfaceName: firewall.interfaceName,
      vpns: { tailscale: false, mullvad: false },
      rules: [],
      intact: false,
      checkedAt: this.now(),
    };
    return {
      ...report,
      machine,
      lastReapplyAt: this.lastReapplyAt,
      reapplyCount: this.reapplyCount,
      lastError: this.lastError,
    };
  }

  /** One watch step: reapply when something is missing. Never throws. */
  tick(): Promise<void> {
    return this.serial(async () => {
      try {
        await this.ensure("watch");
      } catch (error) {
        this.fail(error, "reapply hit an error; will retry on next tick");
      }
    }).catch(() => {
      // Busy: operations already queued will read and repair the ruleset; this tick can go.
    });
  }

  /**
   * GET /status?fresh=1: reads the ruleset now, changing nothing. Diagnostics judge a path that
   * just broke; a reading one tick old (an hour, with a long interval) would say the rules are intact.
   */
  refresh(): Promise<FwStatus> {
    return this.serial(async () => {
      try {
        this.last = (await this.opts.firewall.read()).report;
        this.noteVpnChange(this.last);
        this.emit();
      } catch (error) {
        this.fail(error, "reading the ruleset failed");
        throw error;
      }
      return this.status();
    });
  }

  /** POST /reapply: the same idempotent install, on request; throws so the caller can answer 5xx. */
  reapply(requestedBy: string): Promise<FwReapplyResult> {
    return this.serial(async () => {
      try {
        this.opts.log.info({ requestedBy }, "reapply requested");
        return await this.ensure("request");
      } catch (error) {
        this.fail(error, "requested reapply failed");
        throw error;
      }
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = async () => {
      await this.tick();
      if (this.running) this.timer = setTimeout(() => void loop(), this.opts.intervalMs);
    };
    void loop();
  }

  /** Stops ticking and waits for an operation in flight, so nothing touches nft afterwards. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.queue.catch(() => undefined);
  }

  private async ensure(trigger: ReapplyTrigger): Promise<FwReapplyResult> {
    const { firewall, log } = this.opts;
    const { report } = await firewall.read();
    let added = 0;
    let removed = 0;
    if (!report.intact) {
      // Kept before the install: when it fails, the status still shows which rules are missing.
      this.last = report;
      const missing = report.rules
        .filter((r) => r.state === "missing")
        .map((r) => `${r.family} ${r.table} ${r.chain}: ${r.rule}`);
      log.warn({ trigger, missing }, "accept rule(s) missing; reapplying");
      ({ added, removed } = await firewall.install());
      if (added > 0) {
        this.reapplyCount++;
        this.lastReapplyAt = this.now();
      }
      log.info({ trigger, added, removed, reapplyCount: this.reapplyCount }, "accept rule(s) reapplied");
      this.last = (await firewall.read()).report;
    } else {
      this.last = report;
    }
    this.noteVpnChange(report);
    this.lastError = null;
    this.emit();
    return { added, removed, status: this.status() };
  }

  private noteVpnChange(report: FwCheckReport): void {
    const key = JSON.stringify(report.vpns);
    if (key === this.lastVpnKey) return;
    this.lastVpnKey = key;
    if (!report.vpns.tailscale && !report.vpns.mullvad) {
      this.opts.log.info(
        { vpns: report.vpns },
        "no VPN firewall found (no ip filter ts-input, no inet mullvad); nothing to do",
      );
    } else {
      this.opts.log.info({ vpns: report.vpns }, "VPN firewall detected; keeping accept rules in place");
    }
  }

  private fail(error: unknown, msg: string): void {
    this.lastError = error instanceof Error ? error.message : String(error);
    this.opts.log.error({ err: this.lastError }, msg);
    this.emit();
  }

  private emit(): void {
    const status = this.status();
    const { checkedAt: _checkedAt, ...stable } = status;
    const key = JSON.stringify(stable);
    const changed = key !== this.lastKey;
    this.lastKey = key;
    this.opts.onStatus?.(status, changed);
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    if (this.pendingOps >= pendingOpsMax)
      return Promise.reject(
        new WatcherBusyError(`${pendingOpsMax} firewall operations already waiting; try again shortly`),
      );
    this.pendingOps++;
    const run = this.queue.then(task, task).finally(() => this.pendingOps--);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private now(): string {
    return (this.opts.now?.() ?? new Date()).toISOString();
  }
}
