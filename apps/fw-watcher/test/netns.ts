import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { commandRunner, type NftRunner } from "../src/nft/runner.js";

const execFileP = promisify(execFile);

/** A throwaway network namespace with its own, empty nftables ruleset. */
export interface TestNetns {
  name: string;
  /** Runs nft inside the namespace (the runner the watcher code takes). */
  nft: NftRunner;
  /** The POTLUCK_FW_NFT value that makes the CLI manage this namespace. */
  nftCommand: string;
  /** Loads an nft script (`nft -f`) inside the namespace. */
  load(script: string): Promise<void>;
  /** `nft -j list ruleset` inside the namespace, verbatim. */
  rulesetJson(): Promise<string>;
  remove(): Promise<void>;
}

/** Names carry a per-run random id so concurrent runs never collide (limit: 15-char-safe prefix). */
export async function createNetns(label: string): Promise<TestNetns> {
  const name = `pfw-${randomBytes(4).toString("hex")}-${label}`;
  await execFileP("ip", ["netns", "add", name]);
  const nft = commandRunner(["ip", "netns", "exec", name, "nft"]);
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  let scripts = 0;
  return {
    name,
    nft,
    nftCommand: `ip netns exec ${name} nft`,
    async load(script) {
      const file = join(dir, `script-${scripts++}.nft`);
      writeFileSync(file, script);
      const result = await nft(["-f", file]);
      if (result.code !== 0) throw new Error(`loading nft script in ${name}: ${result.stderr}`);
    },
    async rulesetJson() {
      const result = await nft(["-j", "list", "ruleset"]);
      if (result.code !== 0) throw new Error(`listing ruleset in ${name}: ${result.stderr}`);
      return result.stdout;
    },
    async remove() {
      rmSync(dir, { recursive: true, force: true });
      await execFileP("ip", ["netns", "del", name]).catch(() => undefined);
    },
  };
}

/** Mullvad's killswitch shape: default-drop input/output, only loopback allowed. */
export const mullvadTable = `table inet mullvad {
  chain input { type filter hook input priority 0; policy drop; iif "lo" accept; ct state established,related accept; }
  chain output { type filter hook output priority 0; policy drop; oif "lo" accept; }
  chain forward { type filter hook forward priority 0; policy drop; }
}
`;

/** Tailscale's iptables-nft shape: ts-input drops 100.64.0.0/10 arriving on anything but tailscale0. */
export const tailscaleTable = `table ip filter {
  chain INPUT { type filter hook input priority 0; policy accept; jump ts-input; }
  chain ts-input {
    iifname "lo" accept
    ip saddr 100.115.92.0/23 iifname != "tailscale0" return
    ip saddr 100.64.0.0/10 iifname != "tailscale0" counter drop
  }
}
`;

/** A table that belongs to neither VPN, so tests can prove it is left alone. */
export const unrelatedTable = `table inet household {
  set blocked { type ipv4_addr; elements = { 192.0.2.7 } }
  chain input { type filter hook input priority 10; policy accept; ip saddr @blocked drop; tcp dport 22 accept comment "ssh"; }
}
`;

/** Rules in the namespace that carry the watcher's comment for `interfaceName`. */
export async function ownRules(
  ns: TestNetns,
  interfaceName = "potluck0",
): Promise<Array<{ family: string; table: string; chain: string; handle: number }>> {
  const parsed = JSON.parse(await ns.rulesetJson()) as {
    nftables: Array<Record<string, { comment?: string; family: string; table: string; chain: string; handle: number }>>;
  };
  return parsed.nftables.flatMap((item) =>
    item.rule !== undefined && item.rule.comment === `potluck-fw-watcher:${interfaceName}` ? [item.rule] : [],
  );
}

/** Rules of one chain in listing (evaluation) order, as { handle, comment }. */
export async function chainRules(
  ns: TestNetns,
  family: string,
  table: string,
  chain: string,
): Promise<Array<{ handle: number; comment?: string }>> {
  const parsed = JSON.parse(await ns.rulesetJson()) as {
    nftables: Array<Record<string, { comment?: string; family: string; table: string; chain: string; handle: number }>>;
  };
  return parsed.nftables.flatMap((item) =>
    item.rule !== undefined && item.rule.family === family && item.rule.table === table && item.rule.chain === chain
      ? [item.rule]
      : [],
  );
}
