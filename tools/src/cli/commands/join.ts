import { DEFAULT_SUBJECT_ROOT } from "@potluck/protocol";
import { resolveDataDir } from "@potluck/service";
import {
  backendNames,
  CoordinatorError,
  coordinatorUrlAfterJoin,
  followJoined,
  formatPlan,
  isBackendName,
  joinMesh,
  runCommand,
  type Plan,
  withoutKey,
} from "@potluck/mesh";
import { qrForTerminal } from "../../lib/qr.js";
import { CliError, type Command } from "../command.js";

const usage = `Usage: potluck join [COORDINATOR_URL TOKEN] [--name NAME] [--owner OWNER] [--endpoint HOST:PORT]
                   [--listen-port N] [--data-dir DIR] [--mesh BACKEND] [--dry-run]
                   [--config-out FILE] [--qr] [--no-interface] [--follow [--nats URL]] [--json]

Joins this machine to the mesh: creates its WireGuard and identity keys (0600, in DATA_DIR),
enrolls with the coordinator using a token from \`potluck token create\`, and brings up the
tunnel (MTU 1280) with the mesh backend for this OS. Running it again with the same data dir
re-uses the enrollment (the token is not spent twice); without URL and TOKEN it restarts from
the data dir's saved enrollment. The potluck-mesh agent (apps/mesh/potluck-mesh.service) is what
every machine runs after that: it does the same as potluck join --follow.

  --name        this machine's name in the roster (POTLUCK_MACHINE, else the host name)
  --owner       the owner this machine expects to join as; the token fixes the owner (the hub's
                admin chose it with potluck token create --owner), so a different one is refused
  --endpoint    where other machines reach its WireGuard (default: the address it reaches the
                coordinator from, port 51820)
  --follow      keep running: follow roster changes (adding and removing peers) until stopped
  --nats URL    with --follow: wake on roster changes and send heartbeats over NATS
                (subject root POTLUCK_NATS_PREFIX, default "${DEFAULT_SUBJECT_ROOT}")
  --mesh        the backend (default: this OS's; the one saved at the first join after that):
                linux     potluck0: kernel WireGuard if the kernel has it, else wireguard-go
                darwin    wireguard-go on a utun (macOS; its name is saved for diagnostics)
                windows   the WireGuard for Windows tunnel service, a spoke of the hub
                external  only a wg-quick config for your own WireGuard app (a phone), a spoke
                          of the hub; spokes need the hub's POTLUCK_HUB_MACHINE set
  --dry-run     enroll (or re-use the enrollment), then print every command and file the backend
                would run or write, and run none of them: what to follow by hand on another OS
  --config-out FILE  external: where the config goes (default DATA_DIR/mesh/potluck0.conf)
  --qr          external: also print the config as a QR code, for a phone's WireGuard app
  --no-interface  enroll and save the mesh state, but leave the tunnel alone`;

export const joinCommand: Command = {
  name: "join",
  summary: "enroll with a coordinator and bring up the mesh tunnel",
  usage,
  flags: {
    strings: ["name", "owner", "endpoint", "listen-port", "data-dir", "nats", "mesh", "config-out"],
    booleans: ["follow", "no-interface", "json", "dry-run", "qr"],
  },
  async run(_argv, { flags, positionals }) {
    const [url, token] = positionals;
    if (positionals.length === 1 || positionals.length > 2)
      throw new CliError(
        "expected COORDINATOR_URL TOKEN (or neither, to re-use this data dir's enrollment); see potluck join --help",
        2,
      );
    if (url !== undefined && !/^https?:\/\//.test(url))
      throw new CliError(`coordinator URL ${JSON.stringify(url)} must start with http:// or https://`, 2);
    const dataDir = resolveDataDir(flags.get("data-dir"));
    const listenPort = flags.has("listen-port") ? Number(flags.get("listen-port")) : undefined;
    if (listenPort !== undefined && !(Number.isInteger(listenPort) && listenPort > 0 && listenPort < 65536))
      throw new CliError("--listen-port expects a port 1-65535", 2);
    const mesh = flags.get("mesh");
    if (mesh !== undefined && !isBackendName(mesh))
      throw new CliError(`--mesh expects one of ${backendNames.join(", ")}, not ${JSON.stringify(mesh)}`, 2);
    const dryRun = flags.has("dry-run");
    for (const flag of ["config-out", "qr"])
      if (flags.has(flag) && mesh !== "external")
        throw new CliError(`--${flag} is for --mesh external (a config for your own WireGuard app)`, 2);
    if (flags.has("qr") && dryRun)
      throw new CliError("--qr shows the config with its private key, which --dry-run never writes; drop one", 2);
    if (dryRun && (flags.has("follow") || flags.has("no-interface")))
      throw new CliError("--dry-run plans the tunnel once: it takes neither --follow nor --no-interface", 2);
    const result = await joinMesh({
      coordinatorUrl: url,
      token,
      dataDir,
      name: flags.get("name"),
      owner: flags.get("owner"),
      endpoint: flags.get("endpoint"),
      listenPort,
      interface: !flags.has("no-interface"),
      run: runCommand,
      effects: { warn: (message) => process.stderr.write(`potluck: warning: ${message}\n`) },
      mesh,
      dryRun,
      configOut: flags.get("config-out"),
    }).catch((error: unknown) => {
      throw new CliError(error instanceof CoordinatorError || error instanceof Error ? error.message : String(error));
    });
    const { state, plan } = result;
    if (flags.has("json")) {
      const shown = { ...state, enrolled: result.enrolled, peers: result.peers };
      process.stdout.write(`${JSON.stringify(dryRun ? { ...shown, plan: redacted(plan) } : shown)}\n`);
    } else {
      const device = state.device === undefined ? state.interfaceName : `${state.interfaceName}, ${state.device}`;
      const where = `${state.meshIp}/${state.prefixLength} on ${device}`;
      const joined = result.enrolled ? "joined" : "already joined";
      process.stdout.write(`potluck: ${joined} as ${state.name} (${where}) with ${result.peers} peer(s)\n`);
      if (state.hubMeshIp !== undefined)
        process.stdout.write(
          `potluck: the hub is at ${state.hubMeshIp} on the mesh: the roster (${coordinatorUrlAfterJoin(state)}) and the hub's NATS are reached there from now on\n`,
        );
      if (dryRun && plan !== undefined) process.stdout.write(formatPlan(plan));
      else if (plan !== undefined) for (const note of plan.notes) process.stdout.write(`potluck: ${note}\n`);
    }
    if (flags.has("qr")) {
      const config = plan?.steps.find((s) => s.kind === "write");
      if (config?.kind === "write") process.stdout.write(await qrForTerminal(config.content));
    }
    if (!flags.has("follow")) return 0;
    const abort = new AbortController();
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => abort.abort());
    await followJoined(result, {
      dataDir,
      signal: abort.signal,
      log: (message) => process.stdout.write(`potluck: ${message}\n`),
      natsUrl: flags.get("nats") ?? process.env.POTLUCK_NATS_URL,
      natsPrefix: process.env.POTLUCK_NATS_PREFIX,
    });
    return 0;
  },
};

/** A plan for --json: file contents without the private key, as formatPlan prints them. */
function redacted(plan: Plan | undefined): Plan | undefined {
  if (plan === undefined) return undefined;
  return {
    ...plan,
    steps: plan.steps.map((step) =>
      step.kind === "write" && step.secret !== undefined
        ? {
            ...step,
            content: withoutKey(step, (from) => `<the contents of ${from}>`),
            secret: undefined,
          }
        : step,
    ),
  };
}
