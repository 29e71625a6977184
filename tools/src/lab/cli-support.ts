import { existsSync } from "node:fs";
import { labNamespaces } from "./cleanup.js";
import { createLab } from "./create.js";
import { inHostArgv, wgDirOf } from "./host.js";
import { labIdEnv } from "./names.js";
import { run } from "./run.js";
import { listStates, ownerAlive, readState, writeState, type LabState } from "./state.js";
import type { LabOptions } from "./types.js";

/** Support for `potluck lab …`, which finds labs through their state files rather than a Lab object. */

/** How often the owner's hold timer fires; it does nothing, so any period works (under setInterval's limit). */
const holdIntervalMs = 60 * 60_000;

/**
 * The detached owner `potluck lab up` starts: creates the lab, marks it as the CLI's, and holds it
 * until SIGTERM or SIGINT (`potluck lab down`), then tears it down and exits. Never returns.
 */
export async function ownCliLab(options: LabOptions, log: (line: string) => void): Promise<never> {
  const lab = await createLab(options);
  // A pending promise does not keep Node running. Without the mesh nothing else does (no
  // wireguard-go children), so the owner would exit as soon as the lab was up and its exit hook
  // (hooks.ts) would tear the lab down: this timer holds the process, and so the lab, until `down`.
  const hold = setInterval(() => undefined, holdIntervalMs);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void lab.teardown().finally(() => {
      clearInterval(hold);
      process.exit(0);
    });
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  markCliLab(lab.id);
  log(`lab ${lab.id} up`);
  return new Promise<never>(() => undefined);
}

/** Marks a lab as the one `potluck lab up` started, so exec/status/down act on it. */
export function markCliLab(id: string): void {
  const state = readState(id);
  if (state === null) throw new Error(`lab ${id} has no state file`);
  writeState({ ...state, cli: true });
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
  }
  const known = new Set(states.map((s) => s.id));
  for (const [id, names] of namespaces)
    if (!known.has(id)) lines.push(`leftover namespaces without a lab: ${names.join(", ")}`);
  return lines.length === 0 ? "no labs\n" : `${lines.join("\n")}\n`;
}
