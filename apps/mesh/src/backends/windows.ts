import { win32 } from "node:path";
import { emptyPeerPlan, type MeshBackend, type Plan, type PlanInput } from "./plan.js";
import { hubOf, spokeConfig } from "./spoke.js";

/** Where the WireGuard for Windows installer puts it. */
export const wireguardExe = "C:\\Program Files\\WireGuard\\wireguard.exe";

/**
 * Windows: the official WireGuard for Windows tunnel service with a spoke config. Its documented
 * command line (wireguard-windows docs/enterprise.md, "Tunnel Service"): `wireguard.exe
 * /installtunnelservice C:\path\NAME.conf` installs and starts the service WireGuardTunnel$NAME
 * (the tunnel is named after the file), `/uninstalltunnelservice NAME` removes it. A re-join
 * removes the old service first (its failure when there is none is expected), so the new
 * config, not a stale one, is what runs. Needs an elevated prompt.
 */
export const windowsBackend: MeshBackend = {
  name: "windows",
  followsRoster: false,
  async plan(input: PlanInput): Promise<Plan> {
    const { state } = input;
    const hub = hubOf(input.roster, state);
    const tunnel = state.interfaceName;
    const confPath = win32.join(input.dataDir, `${tunnel}.conf`);
    const privateKey = input.privateKey();
    return {
      backend: "windows",
      steps: [
        {
          kind: "write",
          path: confPath,
          mode: 0o600,
          content: spokeConfig(state, hub, privateKey),
          secret: { key: privateKey, from: input.privateKeyPath },
          why: `the spoke config: one peer, the hub ${hub.name}, carrying the whole mesh`,
        },
        {
          kind: "run",
          argv: [wireguardExe, "/uninstalltunnelservice", tunnel],
          mayFail: true,
          why: `removing an earlier ${tunnel} tunnel service, if any`,
        },
        {
          kind: "run",
          argv: [wireguardExe, "/installtunnelservice", confPath],
          why: `installing and starting the tunnel service WireGuardTunnel$${tunnel}`,
        },
      ],
      shell: "cmd",
      device: tunnel,
      peers: emptyPeerPlan(),
      notes: [
        "run in an elevated (Administrator) prompt, with WireGuard for Windows installed",
        `undo: "${wireguardExe}" /uninstalltunnelservice ${tunnel}`,
      ],
    };
  },
};
