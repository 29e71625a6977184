import type { FwRuleStatus } from "@potluck/protocol";
import { hasChain, hasTable, rulesIn, type NftFamily, type NftRule, type Ruleset } from "./nft/ruleset.js";

/**
 * The three scoped accept rules, and nothing else (field note 1): Tailscale's ts-input drops
 * 100.64.0.0/10 arriving on any interface but tailscale0, and Mullvad's killswitch drops every
 * interface it does not trust, in both directions.
 */
export const RuleSpecs = [
  { vpn: "tailscale", family: "ip", table: "filter", chain: "ts-input", match: "iifname" },
  { vpn: "mullvad", family: "inet", table: "mullvad", chain: "input", match: "iifname" },
  { vpn: "mullvad", family: "inet", table: "mullvad", chain: "output", match: "oifname" },
] as const satisfies ReadonlyArray<{
  vpn: string;
  family: NftFamily;
  table: string;
  chain: string;
  match: "iifname" | "oifname";
}>;
export type RuleSpec = (typeof RuleSpecs)[number];

/** The nft comment that marks the watcher's own rules, so it finds (and removes) exactly those. */
export function ruleComment(interfaceName: string): string {
  return `potluck-fw-watcher:${interfaceName}`;
}

/** The rule's expression list in nft JSON: `<iifname|oifname> "<if>" accept`. */
export function ruleExpr(spec: RuleSpec, interfaceName: string): unknown[] {
  return [{ match: { op: "==", left: { meta: { key: spec.match } }, right: interfaceName } }, { accept: null }];
}

export function ruleText(spec: RuleSpec, interfaceName: string): string {
  return `${spec.match} ${interfaceName} accept`;
}

/** What one reading of the ruleset says about one expected rule. */
export interface RuleReading {
  spec: RuleSpec;
  status: FwRuleStatus;
  /** The watcher's rule that does the job (topmost good copy), if any. */
  keep: NftRule | undefined;
  /** The watcher's other rules in this chain: duplicates, edited copies, a shadowed copy. */
  stray: NftRule[];
}

export function vpnsPresent(ruleset: Ruleset): { tailscale: boolean; mullvad: boolean } {
  return {
    tailscale: hasChain(ruleset, "ip", "filter", "ts-input"),
    mullvad: hasTable(ruleset, "inet", "mullvad"),
  };
}

export function readRules(ruleset: Ruleset, interfaceName: string): RuleReading[] {
  return RuleSpecs.map((spec) => readRule(ruleset, spec, interfaceName));
}

function readRule(ruleset: Ruleset, spec: RuleSpec, interfaceName: string): RuleReading {
  const base = { family: spec.family, table: spec.table, chain: spec.chain, rule: ruleText(spec, interfaceName) };
  if (!hasChain(ruleset, spec.family, spec.table, spec.chain)) {
    const detail = hasTable(ruleset, spec.family, spec.table)
      ? `chain ${spec.chain} does not exist`
      : `table ${spec.family} ${spec.table} does not exist`;
    return { spec, status: { ...base, state: "not_applicable", detail }, keep: undefined, stray: [] };
  }
  const chainRules = rulesIn(ruleset, spec.family, spec.table, spec.chain);
  const comment = ruleComment(interfaceName);
  const firstBlock = chainRules.findIndex((r) => r.comment !== comment && blocks(r));
  const ours = chainRules.map((rule, index) => ({ rule, index })).filter(({ rule }) => rule.comment === comment);
  // Only a correct copy above every drop/reject rule lets packets through; VPN clients that
  // insert their own rules at the top can leave ours below theirs without deleting it.
  const good = ours.find(
    ({ rule, index }) => sameExpr(rule.expr, ruleExpr(spec, interfaceName)) && (firstBlock < 0 || index < firstBlock),
  );
  const stray = ours.filter((o) => o !== good).map((o) => o.rule);
  if (good !== undefined) return { spec, status: { ...base, state: "present" }, keep: good.rule, stray };
  const detail =
    ours.length > 0 ? "its rule is below a drop/reject rule or was edited" : "no potluck accept rule in this chain";
  return { spec, status: { ...base, state: "missing", detail }, keep: undefined, stray };
}

/** True when the rule ends in a drop or reject verdict (the killswitch and CGNAT-drop shapes). */
function blocks(rule: NftRule): boolean {
  return rule.expr.some((e) => typeof e === "object" && e !== null && ("drop" in e || "reject" in e));
}

/** Structural equality of nft JSON expressions (key order independent). */
export function sameExpr(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameExpr((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** nft JSON commands that bring the chain to exactly one good rule at the top: delete strays, insert if missing. */
export function planInstall(
  readings: readonly RuleReading[],
  interfaceName: string,
): { commands: unknown[]; added: number; removed: number } {
  const commands: unknown[] = [];
  let added = 0;
  let removed = 0;
  for (const r of readings) {
    if (r.status.state === "not_applicable") continue;
    for (const rule of r.stray) {
      commands.push(deleteCommand(rule));
      removed++;
    }
    if (r.keep === undefined) {
      const { family, table, chain } = r.spec;
      // insert without a position puts the rule at the top of the chain.
      commands.push({
        insert: {
          rule: { family, table, chain, comment: ruleComment(interfaceName), expr: ruleExpr(r.spec, interfaceName) },
        },
      });
      added++;
    }
  }
  return { commands, added, removed };
}

/** nft JSON commands that delete every rule carrying the watcher's comment for this interface, wherever it is. */
export function planUninstall(ruleset: Ruleset, interfaceName: string): unknown[] {
  const comment = ruleComment(interfaceName);
  return ruleset.rules.filter((r) => r.comment === comment).map(deleteCommand);
}

function deleteCommand(rule: NftRule): unknown {
  return { delete: { rule: { family: rule.family, table: rule.table, chain: rule.chain, handle: rule.handle } } };
}
