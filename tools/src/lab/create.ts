import { mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { destroyLab } from "./cleanup.js";
import type { HostCtx, LabCtx } from "./context.js";
import { makeFaults } from "./faults.js";
import { registerLab, unregisterLab } from "./hooks.js";
import { execInHost, spawnInHost, wgDirOf, type HostRuntime } from "./host.js";
import {
  bridgeName,
  checkHostNames,
  checkId,
  labDir,
  lanHostName,
  lanPortName,
  meshIp,
  netnsName,
  newLabId,
  underlayDev,
  underlayIp,
  underlaySubnet,
  wgListenPort,
} from "./names.js";
import { addRootLink, claimSubnet, rootIp } from "./rootlink.js";
import { pollUntil, runOk } from "./run.js";
import { processStart, writeState, type LabState } from "./state.js";
import type { Lab, LabHost, LabOptions } from "./types.js";
import { generateWgKeys, latestHandshakes, rehandshake, startMesh, type WgKeys } from "./wireguard.js";

/** Every pair handshakes within a second when idle; allow for a machine under heavy load. */
export const meshReadyTimeoutMs = 90_000;

function makeHost(
  id: string,
  subnet: number,
  name: string,
  index: number,
  mesh: boolean,
  cpu: number | undefined,
): HostCtx {
  const runDir = join(labDir(id), name);
  mkdirSync(wgDirOf(runDir), { recursive: true, mode: 0o700 });
  const rt: HostRuntime = {
    netns: netnsName(id, name),
    hostname: name,
    runDir,
    labId: id,
    processes: new Set(),
    ...(cpu === undefined ? {} : { cpu }),
  };
  const keys = mesh ? generateWgKeys() : null;
  const host: LabHost = {
    name,
    netns: rt.netns,
    underlayIp: underlayIp(subnet, index),
    underlayDev,
    meshIp: mesh ? meshIp(index) : null,
    wgPrivateKey: keys?.privateKey ?? null,
    wgPublicKey: keys?.publicKey ?? null,
    wgListenPort: mesh ? wgListenPort : null,
    runDir,
    exec: (argv, opts) => execInHost(rt, argv, opts),
    spawn: (procName, argv, opts) => spawnInHost(rt, procName, argv, opts),
  };
  return { host, rt, index, lanPort: lanPortName(id, index), keys, peers: [], wg: null };
}

/** The home LAN: a bridge in its own namespace, one veth per host (eth0 inside the host). */
async function buildUnderlay(ctx: LabCtx): Promise<void> {
  const bridge = bridgeName(ctx.id);
  await runOk("creating the lab LAN namespace", ["ip", "netns", "add", ctx.lanNetns]);
  await runOk("creating the lab bridge", [
    "sh",
    "-c",
    `ip -n "$0" link add ${bridge} type bridge && ip -n "$0" link set ${bridge} up && ip -n "$0" link set lo up`,
    ctx.lanNetns,
  ]);
  await Promise.all(
    [...ctx.hosts.values()].map(async (h) => {
      await runOk(`creating namespace ${h.rt.netns}`, ["ip", "netns", "add", h.rt.netns]);
      const script = [
        `ip -n "$0" link add ${h.lanPort} type veth peer name ${underlayDev} netns "$1"`,
        `ip -n "$0" link set ${h.lanPort} master ${bridge} up`,
        `ip -n "$1" address add ${h.host.underlayIp}/24 dev ${underlayDev}`,
        `ip -n "$1" link set ${underlayDev} up`,
        `ip -n "$1" link set lo up`,
      ].join(" && ");
      await runOk(`wiring ${h.host.name} to the lab LAN`, ["sh", "-c", script, ctx.lanNetns, h.rt.netns]);
    }),
  );
}

async function meshReady(ctx: LabCtx, meshHosts: HostCtx[]): Promise<boolean> {
  const tables = await Promise.all(meshHosts.map((h) => latestHandshakes(h.rt)));
  return meshHosts.every((h, i) => h.peers.every((p) => (tables[i]?.get(p.publicKey) ?? 0) > 0));
}

/**
 * Hosts are configured in parallel, so a first handshake initiation can (we think) reach a peer whose
 * wireguard-go has no key yet and is dropped; wireguard-go then sometimes took 25–35 s to try
 * again (seen in 2 of 12 lab creations). Re-adding the peers every `rehandshakeEveryMs` makes a
 * fresh attempt at once, within the same overall bound.
 */
const rehandshakeEveryMs = 2_000;

async function awaitHandshakes(ctx: LabCtx, meshHosts: HostCtx[]): Promise<boolean> {
  const deadline = Date.now() + meshReadyTimeoutMs;
  while (Date.now() < deadline) {
    const window = Math.min(rehandshakeEveryMs, deadline - Date.now());
    if (await pollUntil(() => meshReady(ctx, meshHosts), { timeoutMs: window, intervalMs: 100 })) return true;
    await Promise.all(meshHosts.map((h) => rehandshake(h.rt, h.peers)));
  }
  return false;
}

export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const id = checkId(options.id ?? newLabId());
  const meshNames = options.hosts ?? ["mac", "linux", "windows"];
  const extraNames = options.extraHosts ?? [];
  const mesh = options.mesh ?? true;
  checkHostNames([...meshNames, ...extraNames]);
  checkCpus(options.cpus ?? {}, [...meshNames, ...extraNames]);
  let subnet = underlaySubnet(id);
  const hosts = new Map<string, HostCtx>();
  const ctx: LabCtx = {
    id,
    lanNetns: netnsName(id, lanHostName),
    underlayCidr: `198.18.${subnet}.0/24`,
    rootIp: null,
    hosts,
    get(name) {
      const h = hosts.get(name);
      if (h === undefined) throw new Error(`lab ${id} has no host "${name}" (hosts: ${[...hosts.keys()].join(", ")})`);
      return h;
    },
  };
  // State first: from here on a crash leaves something cleanupLeftovers() can attribute and remove.
  writeState(stateOf(ctx));
  registerLab(id, () => [ctx.lanNetns, ...[...hosts.values()].map((h) => h.rt.netns)]);
  const lab = assemble(ctx);
  try {
    if (options.rootLink === true) {
      subnet = claimSubnet(id, subnet);
      ctx.underlayCidr = `198.18.${subnet}.0/24`;
      ctx.rootIp = rootIp(subnet);
    }
    [...meshNames, ...extraNames].forEach((name, index) =>
      hosts.set(name, makeHost(id, subnet, name, index, mesh && index < meshNames.length, options.cpus?.[name])),
    );
    // /var/run/wireguard must exist on the root fs as the mount point for each host's private dir.
    mkdirSync("/var/run/wireguard", { recursive: true, mode: 0o755 });
    writeState(stateOf(ctx));
    await buildUnderlay(ctx);
    if (ctx.rootIp !== null) await addRootLink(id, ctx.lanNetns, bridgeName(id), subnet);
    const meshHosts = [...hosts.values()].filter((h) => h.keys !== null);
    for (const h of meshHosts) {
      h.peers = meshHosts
        .filter((o) => o !== h)
        .map((o) => ({
          publicKey: o.keys?.publicKey ?? "",
          meshIp: o.host.meshIp ?? "",
          endpoint: `${o.host.underlayIp}:${wgListenPort}`,
        }));
    }
    await Promise.all(
      meshHosts.map(async (h) => {
        h.wg = await startMesh(h.rt, h.keys as WgKeys, h.host.meshIp as string, wgListenPort, h.peers);
      }),
    );
    if (meshHosts.length > 1 && !(await awaitHandshakes(ctx, meshHosts))) {
      throw new Error(`the WireGuard mesh did not handshake between every pair within ${meshReadyTimeoutMs / 1000} s`);
    }
    return lab;
  } catch (error) {
    await lab.teardown();
    throw new Error(`creating lab ${id}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function stateOf(ctx: LabCtx): LabState {
  return {
    id: ctx.id,
    ownerPid: process.pid,
    ownerStart: processStart(process.pid),
    cli: false,
    createdAt: new Date().toISOString(),
    lanNetns: ctx.lanNetns,
    underlayCidr: ctx.underlayCidr,
    rootIp: ctx.rootIp,
    hosts: [...ctx.hosts.values()].map((h) => ({
      name: h.host.name,
      netns: h.rt.netns,
      underlayIp: h.host.underlayIp,
      meshIp: h.host.meshIp,
      runDir: h.rt.runDir,
      wgPublicKey: h.host.wgPublicKey,
    })),
  };
}

function assemble(ctx: LabCtx): Lab {
  let teardown: Promise<void> | null = null;
  return {
    id: ctx.id,
    get hosts() {
      return [...ctx.hosts.values()].map((h) => h.host);
    },
    host: (name) => ctx.get(name).host,
    faults: makeFaults(ctx),
    lanNetns: ctx.lanNetns,
    get underlayCidr() {
      return ctx.underlayCidr;
    },
    get rootIp() {
      return ctx.rootIp;
    },
    async handshakeAgeS(from, to) {
      const peer = ctx.get(to).host.wgPublicKey;
      const table = await latestHandshakes(ctx.get(from).rt);
      const epoch = peer === null ? undefined : table?.get(peer);
      if (epoch === undefined || epoch === 0) return null;
      return Math.max(0, Date.now() / 1000 - epoch);
    },
    async rehandshake(from) {
      const h = ctx.get(from);
      await rehandshake(h.rt, h.peers);
    },
    teardown() {
      teardown ??= (async () => {
        const all = [...ctx.hosts.values()];
        // Services first (they may want the mesh to drain), then wireguard-go, then everything else.
        await Promise.all(all.flatMap((h) => [...h.rt.processes].filter((p) => p !== h.wg).map((p) => p.stop())));
        await Promise.all(all.map((h) => h.wg?.stop()));
        await destroyLab(ctx.id, [ctx.lanNetns, ...all.map((h) => h.rt.netns)]);
        unregisterLab(ctx.id);
      })();
      return teardown;
    },
  };
}

/** A pinned host must exist and its CPU must be one this machine has. */
function checkCpus(cpus: Readonly<Record<string, number>>, names: readonly string[]): void {
  const count = availableParallelism();
  for (const [name, cpu] of Object.entries(cpus)) {
    if (!names.includes(name)) throw new Error(`cpus: no host "${name}" in this lab (hosts: ${names.join(", ")})`);
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= count)
      throw new Error(`cpus.${name}: expected a CPU number 0..${count - 1}, got ${cpu}`);
  }
}
