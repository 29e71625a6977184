import { Defaults } from "@potluck/protocol";
import { peerSteps } from "./peer-steps.js";
import { interfaceReadyTimeoutMs } from "./linux.js";
import type { MeshBackend, Plan, PlanInput, Step } from "./plan.js";

/** Where wireguard-go keeps its control sockets on macOS (and wg looks for them). */
export const darwinRunDir = "/var/run/wireguard";
/** The variable the kernel-chosen utun name is read into. */
const utun = "$UTUN";

/**
 * macOS: userspace WireGuard must be a utun device whose number the kernel picks, so potluck0 is
 * a name only: wireguard-go is started on "utun" with WG_TUN_NAME_FILE and writes the real name
 * there, and everything after uses it; addresses and the route go through ifconfig and route.
 * This follows what wireguard-tools' wg-quick does on macOS (src/wg-quick/darwin.bash: add_if,
 * add_addr, set_mtu, up_if, add_route), with one route for the whole mesh, so a machine joining
 * needs only a `wg set` and no new route. A utun from an earlier run whose socket is still there
 * is used again rather than a second one started.
 */
export const darwinBackend: MeshBackend = {
  name: "darwin",
  followsRoster: true,
  async plan(input: PlanInput): Promise<Plan> {
    const { state, probe } = input;
    const nameFile = `${darwinRunDir}/${state.interfaceName}.name`;
    const known = probe.readFile(nameFile)?.trim() ?? "";
    const running = /^utun[0-9]+$/.test(known) && probe.exists(`${darwinRunDir}/${known}.sock`);
    const dev = running ? known : utun;
    const steps: Step[] = [];
    if (!running)
      steps.push(
        {
          kind: "run",
          argv: ["mkdir", "-p", darwinRunDir],
          why: "the directory wireguard-go keeps its control socket and the utun name in",
        },
        {
          kind: "run",
          argv: ["env", `WG_TUN_NAME_FILE=${nameFile}`, "wireguard-go", "utun"],
          why: "starting wireguard-go on the next free utun; it writes the utun's name to the name file",
        },
        { kind: "read", variable: "UTUN", path: nameFile, timeoutMs: interfaceReadyTimeoutMs, why: "the utun it got" },
        {
          kind: "wait",
          argv: ["wg", "show", utun, "public-key"],
          timeoutMs: interfaceReadyTimeoutMs,
          why: "waiting for its control socket",
        },
      );
    steps.push({
      kind: "run",
      argv: ["wg", "set", dev, "private-key", input.privateKeyPath, "listen-port", String(state.listenPort)],
      why: `setting the tunnel's key and port`,
    });
    const ifconfig = running ? await probe.run(["ifconfig", dev]) : null;
    if (ifconfig === null || ifconfig.code !== 0 || !ifconfig.stdout.includes(`inet ${state.meshIp} `))
      steps.push(
        {
          kind: "run",
          // A point-to-point utun: the address with its prefix, and itself as the other end (as wg-quick does).
          argv: ["ifconfig", dev, "inet", `${state.meshIp}/${state.prefixLength}`, state.meshIp, "alias"],
          why: "giving the tunnel its mesh address",
        },
        {
          kind: "run",
          argv: ["route", "-q", "-n", "add", "-inet", Defaults.meshCidr, "-interface", dev],
          why: `routing the mesh (${Defaults.meshCidr}) into the tunnel`,
        },
      );
    steps.push(
      { kind: "run", argv: ["ifconfig", dev, "mtu", String(state.mtu)], why: `MTU ${state.mtu}` },
      { kind: "run", argv: ["ifconfig", dev, "up"], why: "bringing the tunnel up" },
    );
    // The same direct-then-hub choice as Linux while the agent follows the roster (relay.ts).
    const peers = await peerSteps(
      probe,
      dev,
      input.roster.machines,
      state.machineId,
      running,
      input.roster.hub,
      input.relay,
    );
    return {
      backend: "darwin",
      steps: [...steps, ...peers.steps],
      shell: "sh",
      device: running ? known : null,
      peers: peers.peers,
      notes: [
        "run as root (sudo); wireguard-go and wg come with `brew install wireguard-go wireguard-tools`",
        `potluck0 is a name only: the tunnel is the utun named in ${nameFile}`,
      ],
    };
  },
};
