import { join } from "node:path";
import { meshDir } from "../files.js";
import { emptyPeerPlan, type MeshBackend, type Plan, type PlanInput } from "./plan.js";
import { hubOf, spokeConfig } from "./spoke.js";

/** Where `--mesh external` writes the config without --config-out. */
export function defaultConfigOut(dataDir: string, interfaceName: string): string {
  return join(meshDir(dataDir), `${interfaceName}.conf`);
}

/**
 * The user's own WireGuard app (a phone, a router, wg-quick by hand): Potluck runs nothing and
 * writes one standard wg-quick config, a spoke of the hub. The machine is still enrolled, so it
 * has its mesh address and can run a sidecar on it once the user's app brings the tunnel up.
 */
export const externalBackend: MeshBackend = {
  name: "external",
  followsRoster: false,
  async plan(input: PlanInput): Promise<Plan> {
    const { state } = input;
    const hub = hubOf(input.roster, state);
    const path = input.configOut ?? defaultConfigOut(input.dataDir, state.interfaceName);
    const privateKey = input.privateKey();
    return {
      backend: "external",
      steps: [
        {
          kind: "write",
          path,
          mode: 0o600,
          content: spokeConfig(state, hub, privateKey),
          secret: { key: privateKey, from: input.privateKeyPath },
          why: `a wg-quick config for your WireGuard app: one peer, the hub ${hub.name}`,
        },
      ],
      shell: "sh",
      device: null,
      peers: emptyPeerPlan(),
      notes: [
        `import ${path} into your WireGuard app (or \`wg-quick up ${path}\`); --qr shows it as a QR code for a phone`,
      ],
    };
  },
};
