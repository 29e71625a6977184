import type { MeshState } from "@potluck/protocol";
import { hubForwardSteps } from "./hub-forward.js";
import { meshGuardSteps } from "./mesh-guard.js";
import { peerSteps } from "./peer-steps.js";
import type { MeshBackend, Plan, PlanInput, Probe, Step } from "./plan.js";

/** wireguard-go creates its interface and UAPI socket within a second; allow for a loaded machine. */
export const interfaceReadyTimeoutMs = 30_000;
/** Present once the kernel's WireGuard module is loaded. */
export const kernelModulePath = "/sys/module/wireguard";

/**
 * Linux: potluck0 as a kernel WireGuard interface when the kernel has the module, else
 * wireguard-go (userspace) under the same name; key and port with `wg`, address, MTU and link
 * with `ip`. Planned against what is there, so an interface that is already right gets no steps.
 * Packets for the mesh address that did not come through the tunnel are dropped (mesh-guard.ts).
 * On the hub, also the forwarding between roster machines (hub-forward.ts); elsewhere, with a
 * relay tracker, a peer whose direct path is silent rides on the hub's peer (relay.ts).
 */
export const linuxBackend: MeshBackend = {
  name: "linux",
  followsRoster: true,
  async plan(input: PlanInput): Promise<Plan> {
    const { state, probe } = input;
    const dev = state.interfaceName;
    const { steps, exists } = await linuxInterfaceSteps(probe, state, input.privateKeyPath);
    const { machines, hub } = input.roster;
    const peers = await peerSteps(probe, dev, machines, state.machineId, exists, hub, input.relay);
    const forward = await hubForwardSteps(probe, state, input.roster, input.dataDir);
    const guard = await meshGuardSteps(probe, state, input.dataDir);
    return {
      backend: "linux",
      steps: [...steps, ...guard, ...peers.steps, ...forward],
      shell: "sh",
      device: dev,
      peers: peers.peers,
      notes: ["run as root (ip and wg change the network)"],
    };
  },
};

/** Bringing potluck0 up as `state` says; no steps for what is already so. */
export async function linuxInterfaceSteps(
  probe: Probe,
  state: MeshState,
  privateKeyPath: string,
): Promise<{ steps: Step[]; exists: boolean }> {
  const dev = state.interfaceName;
  const steps: Step[] = [];
  const exists = (await probe.run(["ip", "link", "show", "dev", dev])).code === 0;
  if (!exists) {
    const kernel: string[] = ["ip", "link", "add", "dev", dev, "type", "wireguard"];
    // The module loaded: kernel WireGuard for sure. Not loaded: `ip link add` may still load it
    // (as wg-quick tries it), and where it cannot (no module, a container) wireguard-go does the same.
    steps.push(
      probe.exists(kernelModulePath)
        ? { kind: "run", argv: kernel, why: `creating ${dev} (kernel WireGuard)` }
        : {
            kind: "run",
            argv: kernel,
            orElse: ["wireguard-go", dev],
            why: `creating ${dev}: kernel WireGuard if the kernel can, else wireguard-go`,
          },
      {
        kind: "wait",
        argv: ["wg", "show", dev, "public-key"],
        timeoutMs: interfaceReadyTimeoutMs,
        why: `waiting for ${dev} to take its configuration`,
      },
    );
  }
  steps.push({
    kind: "run",
    argv: ["wg", "set", dev, "private-key", privateKeyPath, "listen-port", String(state.listenPort)],
    why: `setting ${dev}'s key and port`,
  });
  const address = `${state.meshIp}/${state.prefixLength}`;
  const addrs = exists ? await probe.run(["ip", "-4", "-o", "addr", "show", "dev", dev]) : null;
  if (addrs === null || addrs.code !== 0 || !addrs.stdout.includes(` ${address} `)) {
    if (exists)
      steps.push({
        kind: "run",
        argv: ["ip", "-4", "addr", "flush", "dev", dev],
        why: `clearing ${dev}'s old addresses`,
      });
    steps.push({
      kind: "run",
      argv: ["ip", "addr", "add", address, "dev", dev],
      why: `giving ${dev} its mesh address`,
    });
  }
  steps.push({
    kind: "run",
    argv: ["ip", "link", "set", dev, "mtu", String(state.mtu), "up"],
    why: `bringing ${dev} up (MTU ${state.mtu})`,
  });
  return { steps, exists };
}
