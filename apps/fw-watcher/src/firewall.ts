import type { FwCheckReport } from "@potluck/protocol";
import { parseRuleset, type Ruleset } from "./nft/ruleset.js";
import { runNft, type NftRunner } from "./nft/runner.js";
import { planInstall, planUninstall, readRules, vpnsPresent, type RuleReading } from "./rules.js";

export interface FirewallReading {
  report: FwCheckReport;
  readings: RuleReading[];
  ruleset: Ruleset;
}

export interface InstallResult {
  /** The reading the plan was made from (before any change). */
  before: FwCheckReport;
  added: number;
  removed: number;
}

/**
 * The watcher's only access to nftables. Reads with `nft -j list ruleset` (JSON, never text)
 * and writes with one JSON batch (`nft -j '{…}'`) per change, which the kernel applies atomically: a
 * VPN client recreating its table mid-batch makes the whole batch fail (and the next tick
 * retries) instead of leaving half a change behind. It never flushes and never touches a policy.
 */
export class Firewall {
  constructor(
    private readonly nft: NftRunner,
    readonly interfaceName: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async read(): Promise<FirewallReading> {
    const ruleset = parseRuleset(await runNft(this.nft, "listing the ruleset", ["-j", "list", "ruleset"]));
    const readings = readRules(ruleset, this.interfaceName);
    const rules = readings.map((r) => r.status);
    const report: FwCheckReport = {
      interfaceName: this.interfaceName,
      vpns: vpnsPresent(ruleset),
      rules,
      intact: rules.every((r) => r.state !== "missing"),
      checkedAt: this.now().toISOString(),
    };
    return { report, readings, ruleset };
  }

  /** Idempotent: afterwards each applicable chain holds exactly one of its rules, at the top. */
  async install(): Promise<InstallResult> {
    const { report, readings } = await this.read();
    const plan = planInstall(readings, this.interfaceName);
    await this.apply("inserting accept rules", plan.commands);
    return { before: report, added: plan.added, removed: plan.removed };
  }

  /** Deletes only its own rules (by handle); returns how many. */
  async uninstall(): Promise<number> {
    const { ruleset } = await this.read();
    const commands = planUninstall(ruleset, this.interfaceName);
    await this.apply("deleting accept rules", commands);
    return commands.length;
  }

  private async apply(action: string, commands: readonly unknown[]): Promise<void> {
    if (commands.length === 0) return;
    // JSON on the command line rather than `-f -`: nft opens /dev/stdin by path, which fails
    // when stdin is a socket (as Node's child-process pipes are). One invocation is one transaction.
    await runNft(this.nft, action, ["-j", JSON.stringify({ nftables: commands })]);
  }
}
