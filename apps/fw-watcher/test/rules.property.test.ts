import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { NftRule, Ruleset } from "../src/nft/ruleset.js";
import { planInstall, planUninstall, readRules, ruleComment, ruleExpr, RuleSpecs } from "../src/rules.js";

// The planner against arbitrary chains: after applying its plan, every applicable rule is present,
// a second plan is empty (idempotence), and no rule the watcher does not own moved or vanished.
const kinds = ["otherAccept", "otherDrop", "ownGood", "ownEdited", "ownOtherIf"] as const;
type Kind = (typeof kinds)[number];

function ruleOf(kind: Kind, spec: (typeof RuleSpecs)[number], handle: number): NftRule {
  const base = { family: spec.family, table: spec.table, chain: spec.chain, handle };
  const accept = ruleExpr(spec, "potluck0");
  switch (kind) {
    case "otherAccept":
      return {
        ...base,
        expr: [{ match: { op: "==", left: { meta: { key: "iif" } }, right: "lo" } }, { accept: null }],
      };
    case "otherDrop":
      return {
        ...base,
        expr: [
          {
            match: {
              op: "==",
              left: { payload: { protocol: "ip", field: "saddr" } },
              right: { prefix: { addr: "100.64.0.0", len: 10 } },
            },
          },
          { drop: null },
        ],
      };
    case "ownGood":
      return { ...base, comment: ruleComment("potluck0"), expr: accept };
    case "ownEdited":
      return { ...base, comment: ruleComment("potluck0"), expr: [{ counter: { packets: 0, bytes: 0 } }, ...accept] };
    case "ownOtherIf":
      return { ...base, comment: ruleComment("wgmesh"), expr: ruleExpr(spec, "wgmesh") };
  }
}

const arbWorld = fc.record({
  tailscale: fc.boolean(),
  mullvad: fc.boolean(),
  chains: fc.tuple(...RuleSpecs.map(() => fc.array(fc.constantFrom(...kinds), { maxLength: 8 }))),
});

function build(world: { tailscale: boolean; mullvad: boolean; chains: Kind[][] }): Ruleset {
  let handle = 1;
  const ruleset: Ruleset = { tables: [], chains: [], rules: [] };
  RuleSpecs.forEach((spec, i) => {
    if (!(spec.vpn === "tailscale" ? world.tailscale : world.mullvad)) return;
    if (!ruleset.tables.some((t) => t.family === spec.family && t.name === spec.table))
      ruleset.tables.push({ family: spec.family, name: spec.table, handle: handle++ });
    ruleset.chains.push({ family: spec.family, table: spec.table, name: spec.chain, handle: handle++ });
    for (const kind of world.chains[i] ?? []) ruleset.rules.push(ruleOf(kind, spec, handle++));
  });
  return ruleset;
}

/** Applies nft JSON insert/delete commands the way the kernel would: insert = top of chain. */
function apply(ruleset: Ruleset, commands: unknown[], nextHandle: { n: number }): Ruleset {
  let rules = [...ruleset.rules];
  for (const command of commands as Array<{ insert?: { rule: NftRule }; delete?: { rule: NftRule } }>) {
    if (command.delete !== undefined) {
      const target = command.delete.rule;
      const before = rules.length;
      rules = rules.filter(
        (r) =>
          !(
            r.family === target.family &&
            r.table === target.table &&
            r.chain === target.chain &&
            r.handle === target.handle
          ),
      );
      expect(rules.length, "a delete names an existing rule").toBe(before - 1);
    } else if (command.insert !== undefined) {
      const rule = { ...command.insert.rule, handle: nextHandle.n++ };
      const first = rules.findIndex(
        (r) => r.family === rule.family && r.table === rule.table && r.chain === rule.chain,
      );
      rules.splice(first < 0 ? rules.length : first, 0, rule);
    } else {
      throw new Error(`unexpected command ${JSON.stringify(command)}`);
    }
  }
  return { ...ruleset, rules };
}

const notOurs = (ruleset: Ruleset) => ruleset.rules.filter((r) => r.comment !== ruleComment("potluck0"));

describe("install and uninstall plans", () => {
  it("reach an intact, stable ruleset and leave every other rule in place", () => {
    fc.assert(
      fc.property(arbWorld, (world) => {
        const before = build(world);
        const handles = { n: 1000 };
        const after = apply(before, planInstall(readRules(before, "potluck0"), "potluck0").commands, handles);
        const readings = readRules(after, "potluck0");
        expect(readings.every((r) => r.status.state !== "missing")).toBe(true);
        expect(planInstall(readings, "potluck0").commands).toEqual([]);
        expect(after.rules.filter((r) => r.comment === ruleComment("potluck0")).length).toBe(
          readings.filter((r) => r.status.state === "present").length,
        );
        expect(notOurs(after)).toEqual(notOurs(before));
        const removed = apply(after, planUninstall(after, "potluck0"), handles);
        expect(removed.rules).toEqual(notOurs(before));
      }),
      { numRuns: 300 },
    );
  });
});
