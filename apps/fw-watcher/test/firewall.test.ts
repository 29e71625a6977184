import { afterEach, describe, expect, it } from "vitest";
import { Firewall } from "../src/firewall.js";
import {
  chainRules,
  createNetns,
  mullvadTable,
  ownRules,
  tailscaleTable,
  unrelatedTable,
  type TestNetns,
} from "./netns.js";

// Real nftables, each test in its own throwaway network namespace.
let spaces: TestNetns[] = [];
afterEach(async () => {
  await Promise.all(spaces.map((ns) => ns.remove()));
  spaces = [];
});

async function netnsWith(label: string, ...scripts: string[]): Promise<TestNetns> {
  const ns = await createNetns(label);
  spaces.push(ns);
  for (const script of scripts) await ns.load(script);
  return ns;
}

const states = (report: { rules: Array<{ chain: string; state: string }> }) =>
  Object.fromEntries(report.rules.map((r) => [r.chain, r.state]));

describe("firewall rules in a real nftables ruleset", () => {
  it("installs exactly three rules at the top of their chains, and ten installs still leave three", async () => {
    const ns = await netnsWith("idem", mullvadTable, tailscaleTable, unrelatedTable);
    const fw = new Firewall(ns.nft, "potluck0");
    const first = await fw.install();
    expect(first.added).toBe(3);
    for (let i = 0; i < 9; i++) expect((await fw.install()).added).toBe(0);
    const own = await ownRules(ns);
    expect(own.map((r) => `${r.family} ${r.table} ${r.chain}`).sort()).toEqual([
      "inet mullvad input",
      "inet mullvad output",
      "ip filter ts-input",
    ]);
    for (const [family, table, chain] of [
      ["ip", "filter", "ts-input"],
      ["inet", "mullvad", "input"],
      ["inet", "mullvad", "output"],
    ] as const) {
      expect((await chainRules(ns, family, table, chain))[0]?.comment, `${family} ${table} ${chain}`).toBe(
        "potluck-fw-watcher:potluck0",
      );
    }
    expect((await fw.read()).report.intact).toBe(true);
  });

  it("checks each rule: missing before install, present after, not_applicable without that VPN", async () => {
    const ns = await netnsWith("check", mullvadTable);
    const fw = new Firewall(ns.nft, "potluck0");
    const before = (await fw.read()).report;
    expect(before.vpns).toEqual({ tailscale: false, mullvad: true });
    expect(states(before)).toEqual({ "ts-input": "not_applicable", input: "missing", output: "missing" });
    expect(before.intact).toBe(false);
    await fw.install();
    const after = (await fw.read()).report;
    expect(states(after)).toEqual({ "ts-input": "not_applicable", input: "present", output: "present" });
    expect(after.intact).toBe(true);
    expect((await ownRules(ns)).length).toBe(2);
  });

  it("uninstall removes only its own rules: the ruleset is byte-identical to before install", async () => {
    const ns = await netnsWith("uninst", mullvadTable, tailscaleTable, unrelatedTable);
    // Someone's own hand-made potluck0 rule (no comment) and another interface's watcher rule must survive.
    await ns.load(
      `insert rule inet mullvad input iifname "potluck0" accept\ninsert rule inet mullvad input iifname "wgmesh" accept comment "potluck-fw-watcher:wgmesh"\n`,
    );
    const before = await ns.rulesetJson();
    const fw = new Firewall(ns.nft, "potluck0");
    await fw.install();
    expect(await ns.rulesetJson()).not.toBe(before);
    expect(await fw.uninstall()).toBe(3);
    expect(await ns.rulesetJson()).toBe(before);
    expect(await fw.uninstall()).toBe(0);
    expect(await ns.rulesetJson()).toBe(before);
  });

  it("with no VPN present changes nothing at all and says all rules are not applicable", async () => {
    const empty = await netnsWith("novpn0");
    const other = await netnsWith(
      "novpn1",
      unrelatedTable,
      "table ip filter {\n  chain INPUT { type filter hook input priority 0; policy accept; }\n}\n",
    );
    for (const ns of [empty, other]) {
      const before = await ns.rulesetJson();
      const fw = new Firewall(ns.nft, "potluck0");
      const result = await fw.install();
      expect(result.added).toBe(0);
      expect(result.before.vpns).toEqual({ tailscale: false, mullvad: false });
      expect(Object.values(states(result.before))).toEqual(["not_applicable", "not_applicable", "not_applicable"]);
      expect(result.before.intact).toBe(true);
      expect(await fw.uninstall()).toBe(0);
      expect(await ns.rulesetJson()).toBe(before);
    }
  });

  it("repairs duplicates, edited copies and a copy shadowed by a drop rule, touching nothing else", async () => {
    const ns = await netnsWith("repair", mullvadTable, tailscaleTable);
    const fw = new Firewall(ns.nft, "potluck0");
    await fw.install();
    const tag = 'comment "potluck-fw-watcher:potluck0"';
    await ns.load(
      [
        `add rule inet mullvad input iifname "potluck0" accept ${tag}`, // a duplicate (two racing installs)
        `add rule inet mullvad output oifname "potluck0" counter accept ${tag}`, // an edited copy
        `insert rule ip filter ts-input ip saddr 100.64.0.0/10 drop`, // a VPN rule inserted above ours
      ].join("\n") + "\n",
    );
    const reading = (await fw.read()).report;
    expect(states(reading)).toEqual({ "ts-input": "missing", input: "present", output: "present" });
    const result = await fw.install();
    expect(result).toMatchObject({ added: 1, removed: 3 });
    expect((await ownRules(ns)).length).toBe(3);
    const tsInput = await chainRules(ns, "ip", "filter", "ts-input");
    expect(tsInput[0]?.comment).toBe("potluck-fw-watcher:potluck0");
    expect(tsInput.length).toBe(5); // ours + the inserted drop + Tailscale's three
    expect((await fw.read()).report.intact).toBe(true);
  });

  it("honours the configured interface name", async () => {
    const ns = await netnsWith("ifname", mullvadTable);
    const fw = new Firewall(ns.nft, "wgmesh");
    await fw.install();
    expect((await ownRules(ns, "wgmesh")).length).toBe(2);
    expect((await ownRules(ns, "potluck0")).length).toBe(0);
    expect((await new Firewall(ns.nft, "potluck0").read()).report.intact).toBe(false);
  });

  it("only ever lists the ruleset or inserts/deletes single rules: never a flush, never a policy or table change", async () => {
    const ns = await netnsWith("scope", mullvadTable, tailscaleTable, unrelatedTable);
    const calls: string[][] = [];
    const fw = new Firewall(async (args) => {
      calls.push([...args]);
      return ns.nft(args);
    }, "potluck0");
    await fw.install();
    await ns.load(
      `add rule inet mullvad input iifname "potluck0" accept comment "potluck-fw-watcher:potluck0"\ndelete table ip filter\n${tailscaleTable}`,
    );
    await fw.install();
    await fw.uninstall();
    const writes = calls.filter((args) => !(args.length === 3 && args.join(" ") === "-j list ruleset"));
    expect(writes.length).toBe(3);
    for (const args of writes) {
      expect(args[0]).toBe("-j");
      const { nftables } = JSON.parse(args[1] ?? "") as { nftables: Array<Record<string, Record<string, unknown>>> };
      for (const command of nftables) {
        expect(Object.keys(command)).toHaveLength(1);
        const [verb, object] = Object.entries(command)[0] ?? [];
        expect(["insert", "delete"]).toContain(verb);
        expect(Object.keys(object ?? {})).toEqual(["rule"]);
      }
    }
  });

  it("fails with the action named when nft cannot run", async () => {
    const fw = new Firewall(
      async () => ({ code: 1, stdout: "", stderr: "Error: Operation not permitted" }),
      "potluck0",
    );
    await expect(fw.read()).rejects.toThrow(/listing the ruleset: nft exited 1: Error: Operation not permitted/);
  });
});
