import type { HostCtx, LabCtx } from "./context.js";
import { execInHost } from "./host.js";
import { underlayDev, wgListenPort } from "./names.js";
import { run, runOk } from "./run.js";
import type { LabFaults, Undo } from "./types.js";
import { startMesh } from "./wireguard.js";

/**
 * Largest frame the MTU black hole lets through on a host's LAN link. A full potluck0 packet
 * (1280 inner) is 1340 bytes on the wire; handshakes (176), keepalives (60) and small HTTP
 * exchanges (a few hundred) stay well under it.
 */
export const mtuBlackholeBytes = 1200;

/** Mullvad's killswitch, reduced to what matters: default drop, only loopback and the LAN allowed. */
function mullvadRuleset(underlayCidr: string): string {
  return `table inet mullvad {
  chain input { type filter hook input priority 0; policy drop;
    iif "lo" accept
    iifname "${underlayDev}" ip saddr ${underlayCidr} accept
  }
  chain output { type filter hook output priority 0; policy drop;
    oif "lo" accept
    oifname "${underlayDev}" ip daddr ${underlayCidr} accept
  }
  chain forward { type filter hook forward priority 0; policy drop; }
}
`;
}

/** Tailscale's iptables-nft rules: 100.64.0.0/10 is its space, so such sources on other interfaces drop. */
const tailscaleRuleset = `table ip filter {
  chain INPUT { type filter hook input priority 0; policy accept;
    jump ts-input
  }
  chain ts-input {
    iifname "lo" accept
    ip saddr 100.115.92.0/23 iifname != "tailscale0" return
    ip saddr 100.64.0.0/10 iifname != "tailscale0" drop
  }
}
`;

const vpnTables = {
  mullvad: { family: "inet", name: "mullvad" },
  tailscale: { family: "ip", name: "filter" },
} as const;

async function nft(h: HostCtx, action: string, script: string): Promise<void> {
  const result = await execInHost(h.rt, ["nft", "-f", "-"], { input: script });
  if (result.code !== 0) throw new Error(`${action} on ${h.host.name}: nft: ${result.stderr.trim()}`);
}

/** Delete-if-present then create, in one nft transaction ("add table" first makes the delete safe). */
function replaceTable(vpn: keyof typeof vpnTables, ruleset: string): string {
  const { family, name } = vpnTables[vpn];
  return `add table ${family} ${name}\ndelete table ${family} ${name}\n${ruleset}`;
}

function dropTable(h: HostCtx, vpn: keyof typeof vpnTables): Undo {
  const { family, name } = vpnTables[vpn];
  return () => nft(h, `removing ${family} ${name}`, `add table ${family} ${name}\ndelete table ${family} ${name}\n`);
}

async function stopAll(h: HostCtx, includeWireguard: boolean): Promise<void> {
  await Promise.all([...h.rt.processes].filter((p) => includeWireguard || p !== h.wg).map((p) => p.stop()));
}

export function makeFaults(ctx: LabCtx): LabFaults {
  const rulesets = { mullvad: () => mullvadRuleset(ctx.underlayCidr), tailscale: () => tailscaleRuleset };
  return {
    async mullvadKillswitch(name) {
      const h = ctx.get(name);
      await nft(h, "installing the Mullvad killswitch", replaceTable("mullvad", rulesets.mullvad()));
      return dropTable(h, "mullvad");
    },
    async tailscaleCgnatDrop(name) {
      const h = ctx.get(name);
      await nft(h, "installing the Tailscale CGNAT drop", replaceTable("tailscale", rulesets.tailscale()));
      return dropTable(h, "tailscale");
    },
    async vpnReconnect(name, vpn) {
      const h = ctx.get(name);
      await nft(h, `reconnecting ${vpn}`, replaceTable(vpn, rulesets[vpn]()));
    },
    async mtuBlackhole(name) {
      const h = ctx.get(name);
      // On the bridge port in the LAN namespace: the host's own stack sees no error, frames just vanish.
      const table = `pl_mtu_${h.lanPort}`;
      const rules = `table bridge ${table} {
  chain forward { type filter hook forward priority 0; policy accept;
    iifname "${h.lanPort}" meta length > ${mtuBlackholeBytes} drop
    oifname "${h.lanPort}" meta length > ${mtuBlackholeBytes} drop
  }
}
`;
      await runOk(
        `installing the MTU black hole for ${name}`,
        ["ip", "netns", "exec", ctx.lanNetns, "nft", "-f", "-"],
        { input: `add table bridge ${table}\ndelete table bridge ${table}\n${rules}` },
      );
      return async () => {
        await runOk(
          `removing the MTU black hole for ${name}`,
          ["ip", "netns", "exec", ctx.lanNetns, "nft", "-f", "-"],
          { input: `add table bridge ${table}\ndelete table bridge ${table}\n` },
        );
      };
    },
    async powerOff(name) {
      const h = ctx.get(name);
      // Links first, then processes: a process that dies closes its connections, and with
      // wireguard-go still up its FIN would reach the peers; a machine losing power sends nothing.
      await runOk(`powering off ${name}`, [
        "sh",
        "-c",
        `ip -n "$0" link set ${underlayDev} down && ip -n "$1" link set ${h.lanPort} down`,
        h.rt.netns,
        ctx.lanNetns,
      ]);
      await stopAll(h, true);
      h.wg = null;
      return async () => {
        await runOk(`powering on ${name}`, [
          "sh",
          "-c",
          `ip -n "$0" link set ${underlayDev} up && ip -n "$1" link set ${h.lanPort} up`,
          h.rt.netns,
          ctx.lanNetns,
        ]);
        if (h.keys !== null && h.host.meshIp !== null && h.wg === null)
          h.wg = await startMesh(h.rt, h.keys, h.host.meshIp, wgListenPort, h.peers);
      };
    },
    async stopProcesses(name) {
      const h = ctx.get(name);
      await stopAll(h, false);
      return async () => undefined;
    },
  };
}

/** True when nft knows the table (for tests and status output). */
export async function hasTable(h: HostCtx, family: string, name: string): Promise<boolean> {
  return (await run(["ip", "netns", "exec", h.rt.netns, "nft", "list", "table", family, name])).code === 0;
}
