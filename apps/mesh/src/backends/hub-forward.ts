import { join } from "node:path";
import type { MeshState, Roster } from "@potluck/protocol";
import { meshDir } from "../files.js";
import type { Probe, Step } from "./plan.js";

/** The nftables table the hub's forwarding rules live in, apart from anything else on the host. */
export const forwardTable = "potluck";
const forwardSysctl = "/proc/sys/net/ipv4/ip_forward";

/**
 * On the hub (the roster names this machine): forward mesh traffic between roster machines, so a
 * spoke with the hub as its only peer reaches every machine — and nothing else. The nftables
 * rules accept a packet in and out of the tunnel only when both ends are roster addresses, and
 * drop whatever else would leave the tunnel through the hub (a spoke using it as a way onto the
 * LAN or the internet): no open relay. WireGuard already refuses a source address outside its
 * peer's allowed IPs, so a roster address cannot be forged from inside the tunnel. Steps only
 * for what differs: the rules are rewritten when the roster's addresses change.
 */
export async function hubForwardSteps(
  probe: Probe,
  state: MeshState,
  roster: Roster,
  dataDir: string,
): Promise<Step[]> {
  if (roster.hub !== state.name) return [];
  const steps: Step[] = [];
  if (probe.readFile(forwardSysctl)?.trim() !== "1")
    steps.push({
      kind: "run",
      argv: ["sysctl", "-w", "net.ipv4.ip_forward=1"],
      why: "letting the hub forward between mesh machines (nftables below limits it to the roster)",
    });
  const addresses = roster.machines.map((m) => m.meshIp).sort();
  const listed = await probe.run(["nft", "list", "set", "inet", forwardTable, "roster"]);
  const have = listed.code === 0 ? [...listed.stdout.matchAll(/\d+\.\d+\.\d+\.\d+/g)].map((m) => m[0]).sort() : null;
  if (have === null || have.join(",") !== addresses.join(",")) {
    const path = join(meshDir(dataDir), "hub-forward.nft");
    steps.push(
      {
        kind: "write",
        path,
        mode: 0o600,
        content: forwardRules(state.interfaceName, addresses),
        why: `the hub's forwarding rules: ${addresses.length} roster address(es), nothing else`,
      },
      { kind: "run", argv: ["nft", "-f", path], why: "loading them (one transaction: the old rules go with it)" },
    );
  }
  return steps;
}

/** The whole table, replaced atomically: declaring it first makes the delete safe on a first load. */
export function forwardRules(dev: string, addresses: readonly string[]): string {
  const elements = addresses.length === 0 ? "" : `\n    elements = { ${addresses.join(", ")} }`;
  return `table inet ${forwardTable}
delete table inet ${forwardTable}
table inet ${forwardTable} {
  set roster {
    type ipv4_addr${elements}
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "${dev}" oifname "${dev}" ip saddr @roster ip daddr @roster accept
    iifname "${dev}" counter drop
    oifname "${dev}" counter drop
  }
}
`;
}
