import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  checkId,
  cleanupLeftovers,
  clusterLabHosts,
  clusterLabMachines,
  describeClusterLab,
  describeLabs,
  hostCommand,
  labRootDir,
  listStates,
  liveCliLabs,
  newLabId,
  ownCliLab,
  ownerAlive,
  pollUntil,
  readState,
  removeOrphanPostgres,
  startClusterLab,
  type LabState,
} from "../../lab/index.js";
import { CliError, unknownChoice, type Command } from "../command.js";
import { runHouseholdDemo } from "../../demo/household-demo.js";

const usage = `Usage: potluck lab up [--cluster] [--hosts N | --hosts a,b,c] [--extra-hosts hub,…] [--no-mesh] [--id ID]
       potluck lab exec HOST [--id ID] -- CMD [ARGS…]
       potluck lab status
       potluck lab down [--id ID] [--all]
       potluck lab demo

The household lab: hosts in network namespaces on one "home LAN" bridge (198.18.x.0/24, a
benchmark-reserved range that never leaves this machine), each with a wireguard-go potluck0
(MTU 1280, 100.64.0.x/10, every pair peered). Needs root, nft, ip, wireguard-go, wg.
  up      starts a lab that keeps running in the background (default hosts mac, linux, windows)
          --cluster: a community on a NATS cluster instead (beyond one household): hosts
          ${clusterLabHosts.join(", ")} without potluck0, each running a clustered nats-server (JetStream,
          usage stream at 3 replicas); two coordinators and two ledgers on them, sharing a private
          PostgreSQL reached over a link from this machine; simulated machines
          ${clusterLabMachines.map((m) => `${m.name} (${m.owner})`).join(", ")} heartbeating through it. Prints the
          NATS URLs, prefix, service URLs and a \`doctor --hub\` command; --hosts adds mesh hosts
          beside it (none by default). Takes minutes on a loaded machine
  exec    runs a command inside a host (its own netns and /var/run/wireguard)
  status  lists labs, hosts, addresses and handshake ages; a cluster's URLs and each coordinator's roster
  down    stops the lab 'up' started and removes every leftover (namespaces, links, processes,
          dirs, a cluster's PostgreSQL) of labs whose owner is gone; --all also removes labs of
          running processes (tests)
  demo    the household scenario of issue 10, narrated on a fresh lab (a few minutes; Ctrl-C tears down)`;

/** A lab with three hosts comes up in about a second; allow for a loaded machine. */
const upTimeoutMs = 180_000;
/** A cluster starts three nats-servers, four services through tsx and PostgreSQL: the cluster suite's bound. */
const clusterUpTimeoutMs = 600_000;
/**
 * How long `down` waits for the background owner to tear its lab down before forcing it: a
 * cluster's owner stops four services (each with the lab's stop grace), three servers and PostgreSQL.
 */
const downWaitMs = 90_000;
const hostsMax = 32;

export const labCommand: Command = {
  name: "lab",
  summary: "the household lab: hosts in network namespaces on a WireGuard mesh",
  usage,
  flags: { strings: ["hosts", "extra-hosts", "id"], booleans: ["no-mesh", "all", "cluster"] },
  // Everything after "--" is a positional too: the command `exec` runs, flags and all.
  async run(_argv, { flags, positionals: [sub, ...rest] }) {
    if (process.getuid?.() !== 0 && sub !== undefined && sub !== "status")
      throw new CliError("the lab needs root (network namespaces, nftables)");
    switch (sub) {
      case "up":
        return up(flags);
      case "_run":
        return runOwner(flags);
      case "exec":
        return exec(rest[0], rest.slice(1), flags.get("id"));
      case "status":
        process.stdout.write(await describeLabs());
        return 0;
      case "down":
        return down(flags.get("id"), flags.has("all"));
      case "demo":
        await runHouseholdDemo((text) => process.stdout.write(`${text}\n`));
        return 0;
      default:
        throw unknownChoice("lab subcommand", sub, ["up", "exec", "status", "down", "demo"], "potluck lab --help");
    }
  },
};

function hostNames(flags: Map<string, string>): { hosts: string[]; extraHosts: string[] } {
  const spec = flags.get("hosts");
  const extraHosts = flags.get("extra-hosts")?.split(",").filter(Boolean) ?? [];
  const cluster = flags.has("cluster");
  if (cluster) refuseClusterNames("--extra-hosts", extraHosts);
  // A cluster lab's own hosts are extra hosts; mesh hosts beside them only when asked for.
  if (spec === undefined) return { hosts: cluster ? [] : ["mac", "linux", "windows"], extraHosts };
  let hosts: string[];
  if (/^\d+$/.test(spec)) {
    const n = Number(spec);
    if (n < 1 || n > hostsMax) throw new CliError(`--hosts: give 1–${hostsMax} hosts (got ${n})`, 2);
    const defaults = ["mac", "linux", "windows"];
    hosts = Array.from({ length: n }, (_, i) => defaults[i] ?? `host${i + 1}`);
  } else hosts = spec.split(",").filter(Boolean);
  if (cluster) refuseClusterNames("--hosts", hosts);
  return { hosts, extraHosts };
}

function refuseClusterNames(flag: string, names: readonly string[]): void {
  const taken = names.filter((n) => (clusterLabHosts as readonly string[]).includes(n));
  if (taken.length > 0)
    throw new CliError(
      `${flag}: ${taken.join(", ")} is a host of --cluster (${clusterLabHosts.join(", ")}); name the others differently`,
      2,
    );
}

/** Starts `lab _run` detached (it owns the lab) and returns once the lab is up. */
async function up(flags: Map<string, string>): Promise<number> {
  const id = checkIdFlag(flags.get("id")) ?? newLabId();
  const names = hostNames(flags);
  mkdirSync(labRootDir(), { recursive: true });
  const logPath = join(labRootDir(), `${id}.log`);
  const log = openSync(logPath, "w");
  // Read through a descriptor of our own: an owner that fails tears its lab down, log file included.
  const logReader = openSync(logPath, "r");
  const cluster = flags.has("cluster");
  const args = [...process.execArgv, process.argv[1] ?? "", "lab", "_run", "--id", id];
  if (names.hosts.length > 0) args.push("--hosts", names.hosts.join(","));
  if (cluster) args.push("--cluster");
  if (names.extraHosts.length > 0) args.push("--extra-hosts", names.extraHosts.join(","));
  if (flags.has("no-mesh")) args.push("--no-mesh");
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  let exited = false;
  child.once("exit", () => (exited = true));
  child.unref();
  const ready = await pollUntil(() => exited || readState(id)?.cli === true, {
    timeoutMs: cluster ? clusterUpTimeoutMs : upTimeoutMs,
    intervalMs: 200,
  });
  const state = readState(id);
  const output = readFileSync(logReader, "utf8");
  closeSync(logReader);
  if (!ready || exited || state?.cli !== true) {
    if (!exited) child.kill("SIGTERM");
    throw new CliError(`the lab did not come up: ${output.trim().slice(-2000) || "no output"}`);
  }
  process.stdout.write(`potluck: lab ${id} is up (owner pid ${state.ownerPid}, log ${logPath})\n${summary(state)}`);
  if (state.cluster !== undefined)
    process.stdout.write(`${(await describeClusterLab(id, state.cluster)).join("\n")}\n`);
  process.stdout.write(
    // With --id: exec and down without it refuse to guess once a second lab is up.
    `Run a command in a host: potluck lab exec ${state.hosts[0]?.name ?? "HOST"} --id ${id} -- ip address\nStop it: potluck lab down --id ${id}\n`,
  );
  return 0;
}

function summary(state: LabState): string {
  return state.hosts
    .map(
      (h) =>
        `  ${h.name.padEnd(10)} netns ${h.netns}  LAN ${h.underlayIp}  ${h.meshIp === null ? "no potluck0" : `mesh ${h.meshIp}`}\n`,
    )
    .join("");
}

function checkIdFlag(id: string | undefined): string | undefined {
  if (id === undefined) return undefined;
  try {
    return checkId(id);
  } catch (error) {
    throw new CliError(`--id: ${(error as Error).message}`, 2);
  }
}

/** The background owner: creates the lab, marks it, and holds it until SIGTERM/SIGINT. */
async function runOwner(flags: Map<string, string>): Promise<number> {
  const { hosts, extraHosts } = hostNames(flags);
  const cluster = flags.has("cluster");
  return ownCliLab(
    {
      id: checkIdFlag(flags.get("id")),
      hosts,
      extraHosts: cluster ? [...clusterLabHosts, ...extraHosts] : extraHosts,
      mesh: !flags.has("no-mesh"),
      // The cluster's PostgreSQL runs in this namespace; its services reach it over the root link.
      rootLink: cluster,
    },
    (line) => process.stdout.write(`${line}\n`),
    cluster ? startClusterLab : undefined,
  );
}

function pickLab(id: string | undefined): LabState {
  if (id !== undefined) {
    const state = readState(checkIdFlag(id) as string);
    if (state === null) throw new CliError(`no lab ${id}; see potluck lab status`);
    return state;
  }
  const labs = liveCliLabs();
  if (labs.length === 0) throw new CliError("no lab is up; start one with potluck lab up");
  if (labs.length > 1)
    throw new CliError(`several labs are up (${labs.map((l) => l.id).join(", ")}); pick one with --id`);
  return labs[0] as LabState;
}

async function exec(hostName: string | undefined, argv: string[], id: string | undefined): Promise<number> {
  if (hostName === undefined || argv.length === 0) throw new CliError("usage: potluck lab exec HOST -- CMD [ARGS…]", 2);
  const state = pickLab(id);
  let command: { argv: string[]; env: NodeJS.ProcessEnv };
  try {
    command = hostCommand(state, hostName, argv);
  } catch (error) {
    throw new CliError((error as Error).message, 2);
  }
  const [bin, ...args] = command.argv;
  const child = spawn(bin as string, args, { env: command.env, stdio: "inherit" });
  return new Promise((resolve) => {
    child.once("error", (error) => resolve((process.stderr.write(`potluck: ${error.message}\n`), 127)));
    child.once("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

async function down(id: string | undefined, all: boolean): Promise<number> {
  const targets = id !== undefined ? [pickLab(id)] : liveCliLabs();
  for (const state of targets) {
    try {
      process.kill(state.ownerPid, "SIGTERM");
    } catch {
      // owner already gone: cleanupLeftovers takes the lab
    }
  }
  // A dead owner tears nothing down: its lab is a leftover at once.
  await pollUntil(() => targets.every((s) => readState(s.id) === null || !ownerAlive(s)), {
    timeoutMs: downWaitMs,
    intervalMs: 200,
  });
  // An owner still there after the wait is stuck: kill it, so its lab counts as a leftover below.
  for (const state of targets)
    if (readState(state.id) !== null && ownerAlive(state)) process.kill(state.ownerPid, "SIGKILL");
  await pollUntil(() => targets.every((s) => !ownerAlive(s)), { timeoutMs: 5_000, intervalMs: 100 });
  // Before the lab's own cleanup removes the state files that name them.
  const removed = [...(await removeOrphanPostgres()), ...(await cleanupLeftovers({ all }))];
  for (const state of targets) process.stdout.write(`potluck: lab ${state.id} stopped\n`);
  for (const item of removed) process.stdout.write(`potluck: removed leftover ${item}\n`);
  if (targets.length === 0 && removed.length === 0)
    process.stdout.write("potluck: no lab was up and nothing was left over\n");
  const remaining = liveLabsOfOthers();
  if (remaining.length > 0 && !all)
    process.stdout.write(
      `potluck: left ${remaining.length} lab(s) of running processes alone (${remaining.join(", ")}); --all removes them too\n`,
    );
  return 0;
}

/** Labs whose owner still runs (a test, another process) survive a plain `down`. */
function liveLabsOfOthers(): string[] {
  return listStates()
    .filter(ownerAlive)
    .map((s) => `${s.id} pid ${s.ownerPid}`);
}
