import { join } from "node:path";
import type { MeshState } from "@potluck/protocol";
import { meshDir } from "../files.js";
import type { Probe, Step } from "./plan.js";

/** The nftables table of the guard, apart from the hub's forwarding table and anything else. */
export const guardTable = "potluck_guard";

/**
 * Linux answers a packet for any of its addresses on any interface (the "weak host" model), so a
 * LAN host that routes this machine's mesh address via its LAN address reaches services that listen
 * on the mesh address only (the hub's NATS, a sidecar's peer API) without ever crossing WireGuard.
 * The guard drops a packet for the mesh address that came in on neither the mesh interface nor
 * loopback (this machine's own traffic to itself). Steps only when the rule differs from `state`.
 * Where nft is missing the step fails and the services' own checks (the NATS secret, signed peer
 * calls) are what remains: the join still succeeds, and says that the mesh address is unguarded.
 */
export async function meshGuardSteps(probe: Probe, state: MeshState, dataDir: string): Promise<Step[]> {
  const wanted = guardRules(state.interfaceName, state.meshIp);
  const listed = await probe.run(["nft", "list", "table", "inet", guardTable]);
  if (
    listed.code === 0 &&
    listed.stdout.includes(`ip daddr ${state.meshIp} `) &&
    listed.stdout.includes(`"${state.interfaceName}"`)
  )
    return [];
  const path = join(meshDir(dataDir), "mesh-guard.nft");
  return [
    {
      kind: "write",
      path,
      mode: 0o600,
      content: wanted,
      why: `dropping packets for ${state.meshIp} that did not come through ${state.interfaceName}`,
    },
    {
      kind: "run",
      argv: ["nft", "-f", path],
      mayFail: true,
      lostIfFails: `the mesh address ${state.meshIp} is NOT guarded: a LAN host that routes it here reaches services listening on it without WireGuard (install nftables and join again)`,
      why: "loading the guard (one transaction; without nft the mesh works unguarded)",
    },
  ];
}

/** The whole table, replaced atomically: declaring it first makes the delete safe on a first load. */
export function guardRules(dev: string, meshIp: string): string {
  return `table inet ${guardTable}
delete table inet ${guardTable}
table inet ${guardTable} {
  chain input {
    type filter hook input priority -5; policy accept;
    ip daddr ${meshIp} iifname != { "${dev}", "lo" } counter drop
  }
}
`;
}
