import { existsSync } from "node:fs";
import { labNamespaces } from "./cleanup.js";
import { createLab } from "./create.js";
import { inHostArgv, wgDirOf } from "./host.js";
import { labIdEnv } from "./names.js";
import { run } from "./run.js";
import { describeClusterLab } from "./cluster-lab.js";
import { listStates, ownerAlive, readState, writeState, type ClusterLabState, type LabState } from "./state.js";
import type { Lab, LabOptions } from "./types.js";

/** Support for `potluck lab …`, which finds labs through their state files rather than a Lab object. */

/** How often the owner's hold timer fires; it does nothing, so any period works (under setInterval's limit). */
const holdIntervalMs = 60 * 60_000;

/** Something the owner runs on its lab besides the lab itself (a cluster), stopped before the lab. */
export interface LabAttachment {
  cluster?: ClusterLabState;
  stop(): Promise<void>;
}

/**
 * The detached owner `potluck lab up` starts: creates the lab, starts `attach` on it if given,
 * marks it as the CLI's, and holds it until SIGTERM or SIGINT (`potluck lab down`), then stops
 * the attachment, tears the lab down and exits. Exits 1 if the attachment fails to start. Never returns.
 */
export async function ownCliLab(
  options: LabOptions,
  log: (line: string) => void,
  attach?: (lab: Lab, signal: AbortSignal) => Promise<LabAttachment>,
): Promise<never> {
  const lab = await createLab(options);
  // A pending promise does not keep Node running. Without the mesh nothing else does (no
  // wireguard-go children), so the owner would exit as soon as the lab was up and its exit hook
  // (hooks.ts) would tear the lab down: this timer holds the process, and so the lab, until `down`.
  const hold = setInterval(() => undefined, holdIntervalMs);
  const starting = new AbortController();
  let attached: Promise<LabAttachment | undefined> = Promise.resolve(undefined);
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    starting.abort();
    // A stop while the attachment starts waits for it to reach its next step and undo itself.
    void attached
      .then(
        (a) => a?.stop(),
        () => undefined,
      )
      .then(() => lab.teardown())
      .finally(() => {
        clearInterval(hold);
        process.exit(code);
      });
  };
  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));
  let cluster: ClusterLabState | undefined;
  if (attach !== undefined) {
    attached = attach(lab, starting.signal);
    try {
      cluster = (await attached)?.cluster;
    } catch (error) {
      const why = starting.signal.aborted
        ? "stopped while it started"
        : error instanceof Error
          ? error.message
          : String(error);
      log(`lab ${lab.id} did not come up: ${why}`);
      stop(1);
      return new Promise<never>(() => undefined);
    }
  }
  // A stop that came as the attachment finished starting: the lab is going, do not announce it.
  if (stopping) return new Promise<never>(() => undefined);
  markCliLab(lab.id, cluster);
  log(`lab ${lab.id} up`);
  return new Promise<never>(() => undefined);
}

/** Marks a lab as the one `potluck lab up` started, so exec/status/down act on it. */
export function markCliLab(id: string, cluster?: ClusterLabState): void {
  const state = readState(id);
  if (state === null) throw new Error(`lab ${id} has no state file`);
  writeState({ ...state, cli: true, ...(cluster === undefined ? {} : { cluster }) });
}

/** Labs started by `potluck lab up` whose owner still runs. */
export function liveCliLabs(): LabState[] {
  return listStates().filter((s) => s.cli && ownerAlive(s));
}

/** argv + env that run a command inside a host of a lab known only by its state. */
export function hostCommand(
  state: LabState,
  hostName: string,
  argv: readonly string[],
): { argv: string[]; env: NodeJS.ProcessEnv } {
  const host = state.hosts.find((h) => h.name === hostName);
  if (host === undefined)
    throw new Error(`lab ${state.id} has no host "${hostName}" (hosts: ${state.hosts.map((h) => h.name).join(", ")})`);
  return {
    argv: inHostArgv(host.netns, wgDirOf(host.runDir), host.name, argv),
    env: { ...process.env, [labIdEnv]: state.id },
  };
}

/** A human summary of every lab on this machine: owner, hosts, addresses, handshake ages. */
export async function describeLabs(): Promise<string> {
  const states = listStates();
  const namespaces = labNamespaces();
  const lines: string[] = [];
  for (const state of states) {
    const owner = ownerAlive(state)
      ? `owner pid ${state.ownerPid}`
      : "owner gone (leftover: `potluck lab down` removes it)";
    lines.push(
      `lab ${state.id}${state.cli ? " (potluck lab up)" : ""}: ${owner}, LAN ${state.underlayCidr}, created ${state.createdAt}`,
    );
    for (const host of state.hosts) {
      const present = namespaces.get(state.id)?.includes(host.netns) === true;
      let mesh = host.meshIp === null ? "no potluck0" : `mesh ${host.meshIp}`;
      if (present && host.meshIp !== null && existsSync(`${wgDirOf(host.runDir)}/potluck0.sock`)) {
        const { argv, env } = hostCommand(state, host.name, ["wg", "show", "potluck0", "latest-handshakes"]);
        const result = await run(argv, { env, timeoutMs: 15_000 });
        const ages = result.stdout
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((line) => {
            const [key, epoch] = line.split(/\s+/);
            const peer = state.hosts.find((h) => h.wgPublicKey === key)?.name ?? key?.slice(0, 8);
            return Number(epoch) > 0 ? `${peer} ${Math.round(Date.now() / 1000 - Number(epoch))}s` : `${peer} never`;
          });
        mesh += ages.length > 0 ? ` (handshakes: ${ages.join(", ")})` : "";
      }
      lines.push(
        `  ${host.name.padEnd(10)} netns ${host.netns}${present ? "" : " (missing)"}  LAN ${host.underlayIp}  ${mesh}`,
      );
    }
    if (state.cluster !== undefined) lines.push(...(await describeClusterLab(state.id, state.cluster)));
  }
  const known = new Set(states.map((s) => s.id));
  for (const [id, names] of namespaces)
    if (!known.has(id)) lines.push(`leftover namespaces without a lab: ${names.join(", ")}`);
  return lines.length === 0 ? "no labs\n" : `${lines.join("\n")}\n`;
}
