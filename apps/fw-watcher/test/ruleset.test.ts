import { describe, expect, it } from "vitest";
import { parseRuleset } from "../src/nft/ruleset.js";
import { planInstall, readRules, vpnsPresent } from "../src/rules.js";

const meta = { metainfo: { version: "1.0.6", json_schema_version: 1 } };
const tsRule = (handle: number, expr: unknown[], comment?: string) => ({
  rule: {
    family: "ip",
    table: "filter",
    chain: "ts-input",
    handle,
    expr,
    ...(comment === undefined ? {} : { comment }),
  },
});
const ours = [{ match: { op: "==", left: { meta: { key: "iifname" } }, right: "potluck0" } }, { accept: null }];

describe("parsing nft -j list ruleset", () => {
  it("reads tables, chains and rules and skips what it does not need (sets, iptables-nft xt matches)", () => {
    const ruleset = parseRuleset(
      JSON.stringify({
        nftables: [
          meta,
          { table: { family: "ip", name: "filter", handle: 1 } },
          { chain: { family: "ip", table: "filter", name: "ts-input", handle: 2 } },
          { set: { family: "ip", table: "filter", name: "s", type: "ipv4_addr", handle: 3 } },
          tsRule(4, [
            { xt: { type: "match", name: "conntrack" } },
            { counter: { packets: 0, bytes: 0 } },
            { drop: null },
          ]),
        ],
      }),
    );
    expect(ruleset.rules.length).toBe(1);
    expect(vpnsPresent(ruleset)).toEqual({ tailscale: true, mullvad: false });
    // Tailscale's xt drop rule counts as a drop: a rule of ours below it would be shadowed.
    const readings = readRules(ruleset, "potluck0");
    expect(readings[0]?.status.state).toBe("missing");
    expect(planInstall(readings, "potluck0")).toMatchObject({ added: 1, removed: 0 });
  });

  it("refuses output that is not an nft JSON listing, naming what is wrong", () => {
    expect(() => parseRuleset("table ip filter {")).toThrow(/not JSON/);
    expect(() => parseRuleset('{"tables": []}')).toThrow(/expected \{"nftables"/);
    expect(() =>
      parseRuleset(
        JSON.stringify({ nftables: [{ rule: { family: "ip", table: "filter", chain: "x", handle: "7" } }] }),
      ),
    ).toThrow(/rule handle/);
  });

  it("keeps the topmost good copy and plans deletes by handle for the rest", () => {
    const ruleset = parseRuleset(
      JSON.stringify({
        nftables: [
          { table: { family: "ip", name: "filter", handle: 1 } },
          { chain: { family: "ip", table: "filter", name: "ts-input", handle: 2 } },
          tsRule(9, ours, "potluck-fw-watcher:potluck0"),
          tsRule(5, [{ match: { op: "!=", left: { meta: { key: "iifname" } }, right: "tailscale0" } }, { drop: null }]),
          tsRule(11, ours, "potluck-fw-watcher:potluck0"),
          tsRule(12, ours, "potluck-fw-watcher:wgmesh"),
        ],
      }),
    );
    const readings = readRules(ruleset, "potluck0");
    expect(readings[0]?.status.state).toBe("present");
    expect(readings[0]?.keep?.handle).toBe(9);
    const plan = planInstall(readings, "potluck0");
    expect(plan).toMatchObject({ added: 0, removed: 1 });
    expect(plan.commands).toEqual([
      { delete: { rule: { family: "ip", table: "filter", chain: "ts-input", handle: 11 } } },
    ]);
  });
});
