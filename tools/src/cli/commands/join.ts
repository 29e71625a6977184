import { homedir } from "node:os";
import { join } from "node:path";
import { DEFAULT_SUBJECT_ROOT } from "@potluck/protocol";
import { CoordinatorError, followJoined, joinMesh, runCommand } from "@potluck/mesh";
import { CliError, type Command } from "../command.js";

const usage = `Usage: potluck join [COORDINATOR_URL TOKEN] [--name NAME] [--owner OWNER] [--endpoint HOST:PORT]
                   [--listen-port N] [--data-dir DIR] [--no-interface] [--follow [--nats URL]] [--json]

Joins this machine to the mesh: creates its WireGuard and identity keys (0600, in DATA_DIR),
enrolls with the coordinator using a token from \`potluck token create\`, and brings up potluck0
(wireguard-go, MTU 1280) with every peer on the roster. Running it again with the same data dir
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
  --no-interface  enroll and save the mesh state, but leave potluck0 alone`;

export const joinCommand: Command = {
  name: "join",
  summary: "enroll with a coordinator and bring up potluck0",
  usage,
  flags: {
    strings: ["name", "owner", "endpoint", "listen-port", "data-dir", "nats"],
    booleans: ["follow", "no-interface", "json"],
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
    const dataDir = flags.get("data-dir") ?? process.env.POTLUCK_DATA_DIR ?? join(homedir(), ".potluck");
    const listenPort = flags.has("listen-port") ? Number(flags.get("listen-port")) : undefined;
    if (listenPort !== undefined && !(Number.isInteger(listenPort) && listenPort > 0 && listenPort < 65536))
      throw new CliError("--listen-port expects a port 1-65535", 2);
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
    }).catch((error: unknown) => {
      throw new CliError(error instanceof CoordinatorError || error instanceof Error ? error.message : String(error));
    });
    const { state } = result;
    if (flags.has("json"))
      process.stdout.write(`${JSON.stringify({ ...state, enrolled: result.enrolled, peers: result.peers })}\n`);
    else
      process.stdout.write(
        `potluck: ${result.enrolled ? "joined" : "already joined"} as ${state.name} (${state.meshIp}/${state.prefixLength} on ${state.interfaceName}) with ${result.peers} peer(s)\n`,
      );
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
