import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MeshState, Roster } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLab,
  hubPorts,
  pollUntil,
  probeNats,
  waitForOutput,
  type Lab,
  type LabHost,
  type LabProcess,
} from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";

// `potluck up --hub` on a hub that joined its own mesh, run as the README's "Your first
// household" tells a user to: `potluck up --hub` with a NATS secret, a join token, the hub's own
// machine joined (as root, `--endpoint LAN_IP:51820 --follow`, the coordinator told
// POTLUCK_HUB_MACHINE), then `potluck up --hub` started again. Its nats-server must then listen on
// the hub's mesh address alone: "mallory", a LAN host that never joined, cannot even connect on
// the LAN address, and "mac", joined the README's way with the hub's LAN URLs, reaches NATS and
// the roster at the mesh address and shows up online. Everything goes through bin/potluck.mjs.

const potluck = join(repoRoot, "bin/potluck.mjs");
/** Four node services under `up` on one host of a loaded 2-core machine: minutes, not seconds. */
const upMs = 300_000;

let lab: Lab;
let hub: LabHost;
let mac: LabHost;
let mallory: LabHost;
let hubMeshIp: string;
const natsSecret = randomBytes(16).toString("hex");
const prefix = `t${randomBytes(4).toString("hex")}`;
const running: LabProcess[] = [];
let up: LabProcess;
let hubAgent: LabProcess;

/** A host's own HOME (so `~/.potluck` is its own), none of the runner's POTLUCK_* settings. */
function envFor(host: LabHost, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const home = join(host.runDir, "home");
  mkdirSync(home, { recursive: true });
  const env: NodeJS.ProcessEnv = { HOME: home };
  // Lab hosts merge this over the runner's environment; an undefined value removes a variable.
  for (const key of Object.keys(process.env))
    if (key.startsWith("POTLUCK_") || key === "DATABASE_URL") env[key] = undefined;
  // No model to load and no local Ollama to find: this suite is about NATS and the roster.
  return { ...env, POTLUCK_NATS_PREFIX: prefix, POTLUCK_MODELS: "", POTLUCK_OLLAMA_PORT: "0", ...extra };
}

/** The hub's shell, as the README sets it: the household's NATS secret, the hub machine's name. */
const hubEnv = () =>
  envFor(hub, { POTLUCK_NATS_URL: `nats://${natsSecret}@127.0.0.1:4222`, POTLUCK_HUB_MACHINE: "hub" });

function spawnPotluck(host: LabHost, name: string, args: string[], env: NodeJS.ProcessEnv): LabProcess {
  const proc = host.spawn(name, [process.execPath, potluck, ...args], { cwd: repoRoot, env });
  running.push(proc);
  return proc;
}

async function startUp(): Promise<LabProcess> {
  const proc = spawnPotluck(hub, "up", ["up", "--hub"], hubEnv());
  await waitForOutput(proc, /potluck: up —/, "potluck up --hub on the hub", upMs);
  return proc;
}

async function tokenCreate(): Promise<string> {
  const res = await hub.exec([process.execPath, potluck, "token", "create"], {
    cwd: repoRoot,
    env: hubEnv(),
    timeoutMs: 120_000,
  });
  if (res.code !== 0) throw new Error(`potluck token create: ${res.stderr}${res.stdout}`);
  return res.stdout.trim();
}

async function roster(): Promise<Roster> {
  const res = await hub.exec(["curl", "-sf", `http://127.0.0.1:${hubPorts.coordinator}/v1/roster`], {
    timeoutMs: 30_000,
  });
  return Roster.parse(JSON.parse(res.stdout));
}

const natsProbe = (from: LabHost, target: string) => probeNats(from, target, `${prefix}.probe`);

/** `ss` in the hub's namespace: local and peer address of every TCP socket on port 4222 in `state`. */
async function natsSockets(state: "listening" | "established"): Promise<Array<{ local: string; peer: string }>> {
  const res = await hub.exec(["ss", "-Htn", "state", state, "( sport = :4222 )"]);
  expect(res.code, res.stderr).toBe(0);
  return res.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 4)
    .map((cols) => ({ local: cols.at(-2) ?? "", peer: cols.at(-1) ?? "" }));
}

beforeAll(async () => {
  lab = await createLab({ hosts: ["mac"], mesh: false, extraHosts: ["hub", "mallory"] });
  hub = lab.host("hub");
  mac = lab.host("mac");
  mallory = lab.host("mallory");

  // README step 1: the stack with NATS demanding the secret, then a token for the hub's own machine.
  const first = await startUp();
  const token = await tokenCreate();
  // The hub's own machine joins its mesh, as root, and keeps its mesh agent running.
  hubAgent = spawnPotluck(
    hub,
    "mesh-agent",
    ["join", `http://127.0.0.1:${hubPorts.coordinator}`, token, "--endpoint", `${hub.underlayIp}:51820`, "--follow"],
    hubEnv(),
  );
  await waitForOutput(hubAgent, /joined as hub/, "potluck join on the hub", upMs);
  const ip = /the hub is at (100\.64\.\d+\.\d+) on the mesh/.exec(hubAgent.output())?.[1];
  if (ip === undefined) throw new Error(`the hub's join did not name it the hub: ${hubAgent.output()}`);
  hubMeshIp = ip;
  // `potluck up --hub` started again moves NATS onto the mesh address.
  await first.stop();
  up = await startUp();
}, 900_000);

afterAll(async () => {
  for (const proc of running.reverse()) await proc.stop().catch(() => undefined);
  await lab?.teardown();
}, 180_000);

describe("potluck up --hub on a hub that joined its own mesh", () => {
  it("saves the hub's own mesh address as the hub's in ~/.potluck, where up --hub reads it", () => {
    const state = MeshState.parse(
      JSON.parse(readFileSync(join(hub.runDir, "home", ".potluck", "mesh", "state.json"), "utf8")),
    );
    expect(state.meshIp).toBe(hubMeshIp);
    expect(state.hubMeshIp).toBe(hubMeshIp);
  });

  it("starts nats-server on the mesh address alone, and says so", async () => {
    const listening = await natsSockets("listening");
    expect(listening.map((s) => s.local)).toEqual([`${hubMeshIp}:4222`]);
    const ps = await hub.exec(["ps", "-eo", "args"]);
    expect(ps.stdout).toMatch(new RegExp(`nats-server .*-a ${hubMeshIp.replaceAll(".", "\\.")} -p 4222`));
    expect(up.output()).toContain(`NATS listens on this hub's mesh address ${hubMeshIp} only`);
    expect(up.output()).not.toMatch(/running the sidecar alone|NATS takes anyone on the LAN/);
    // The coordinator and ledger started beside it reach it there (they would not be up otherwise).
    expect(up.output()).toMatch(/potluck: up — .*\(coordinator, ledger, .*sidecar\)/);
  });

  it("plans `service install --hub` the same way: NATS on the mesh address, the services' settings pointing there", async () => {
    const res = await hub.exec([process.execPath, potluck, "service", "install", "--hub", "--dry-run"], {
      cwd: repoRoot,
      env: hubEnv(),
      timeoutMs: 120_000,
    });
    expect(res.code, res.stderr).toBe(0);
    const ip = hubMeshIp.replaceAll(".", "\\.");
    expect(res.stdout).toMatch(new RegExp(`ExecStart=\\S*nats-server -js -sd \\S+ -a ${ip} -p 4222 -c `));
    expect(res.stdout).toMatch(/After=.*potluck-mesh\.service/);
    expect(res.stdout).toContain(`| POTLUCK_NATS_URL=nats://<redacted>@${hubMeshIp}:4222\n`);
  });

  it("lets a LAN host not even connect to NATS on the hub's LAN address", async () => {
    const lan = await natsProbe(mallory, hub.underlayIp);
    expect(lan.what, JSON.stringify(lan)).toBe("ECONNREFUSED");
  });

  it("serves a machine that joined with the hub's LAN URLs, at the hub's mesh address", async () => {
    // README step 2 on mac: join with --follow and the LAN NATS URL, then a sidecar given the LAN URLs.
    const lanNats = `nats://${natsSecret}@${hub.underlayIp}:4222`;
    const lanCoordinator = `http://${hub.underlayIp}:${hubPorts.coordinator}`;
    const token = await tokenCreate();
    const agent = spawnPotluck(
      mac,
      "mesh-agent",
      ["join", lanCoordinator, token, "--follow", "--nats", lanNats],
      envFor(mac),
    );
    await waitForOutput(agent, /joined as mac/, "potluck join on mac", upMs);
    expect(agent.output()).toContain(`the hub is at ${hubMeshIp} on the mesh`);
    // Heartbeats go over NATS only: the agent connects at the mesh address, the secret kept.
    await waitForOutput(
      agent,
      new RegExp(`NATS connected \\(nats://\\*\\*\\*@${hubMeshIp.replaceAll(".", "\\.")}:4222`),
      "mac's NATS over the mesh",
      upMs,
    );
    const sidecar = mac.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
      cwd: repoRoot,
      env: envFor(mac, { POTLUCK_COORDINATOR_URL: lanCoordinator, POTLUCK_NATS_URL: lanNats, POTLUCK_DISCOVER: "0" }),
    });
    running.push(sidecar);
    await waitForOutput(sidecar, /sidecar listening/, "mac's sidecar", upMs);
    expect(sidecar.output()).toContain(`reaching the hub at its mesh address ${hubMeshIp}`);

    // The hub's coordinator, started by up --hub on the mesh address, sees mac's heartbeats.
    let states = "";
    const online = await pollUntil(
      async () => {
        const machines = (await roster()).machines;
        states = machines.map((m) => `${m.name} ${m.state} ${m.meshIp}`).join(", ");
        return machines.some((m) => m.name === "mac" && m.state === "online");
      },
      { timeoutMs: 180_000, intervalMs: 1_000 },
    );
    expect(online, states).toBe(true);
    const macMeshIp = (await roster()).machines.find((m) => m.name === "mac")?.meshIp;
    expect(macMeshIp).toMatch(/^100\.64\./);

    // Every NATS client of the hub comes from a mesh address: the hub's own services from its
    // own, mac's agent and sidecar from mac's; none over the LAN.
    const clients = await natsSockets("established");
    const peers = clients.map((c) => c.peer.replace(/:\d+$/, ""));
    expect(peers.length, JSON.stringify(clients)).toBeGreaterThan(0);
    expect(new Set(clients.map((c) => c.local))).toEqual(new Set([`${hubMeshIp}:4222`]));
    expect(
      peers.filter((p) => p !== hubMeshIp && p !== macMeshIp),
      JSON.stringify(clients),
    ).toEqual([]);
    expect(peers.filter((p) => p === macMeshIp).length, JSON.stringify(clients)).toBeGreaterThanOrEqual(2);

    // Over the mesh, NATS answers mac, and still wants the secret.
    const fromMac = await natsProbe(mac, hubMeshIp);
    expect(fromMac.what).toBe("answered");
    expect(fromMac.seen).toMatch(/^INFO .*-ERR 'Authorization Violation'/s);
  }, 900_000);

  it("after a reboot runs the sidecar alone until the mesh agent brings potluck0 back, then NATS is on the mesh again", async () => {
    // A reboot of the hub: its services and mesh agent gone, and with them potluck0 and the guard.
    await up.stop();
    await hubAgent.stop();
    await hub.exec(["ip", "link", "del", "potluck0"]);
    await hub.exec(["nft", "delete", "table", "inet", "potluck_guard"]);
    expect((await hub.exec(["ip", "-o", "addr", "show"])).stdout).not.toContain(hubMeshIp);

    // `potluck up --hub` first: it must not open NATS to the LAN while the mesh address is missing.
    const early = spawnPotluck(hub, "up-early", ["up", "--hub"], hubEnv());
    await waitForOutput(early, /potluck: up —/, "potluck up --hub before the mesh agent", upMs);
    expect(early.output()).toContain(
      `potluck: running the sidecar alone: this hub joined its mesh at ${hubMeshIp}, where its NATS listens, but no interface carries that address yet: start the mesh agent (potluck-mesh) first`,
    );
    expect(early.output()).toMatch(/potluck: up — .*\(sidecar\)/);
    expect(await natsSockets("listening")).toEqual([]);
    await early.stop();

    // The mesh agent as its service runs it: potluck0 back from the saved join, no coordinator needed.
    const agent = hub.spawn("potluck-mesh", [process.execPath, join(repoRoot, "bin/potluck-mesh.mjs")], {
      cwd: repoRoot,
      env: hubEnv(),
    });
    running.push(agent);
    await waitForOutput(
      agent,
      new RegExp(`up as hub \\(${hubMeshIp.replaceAll(".", "\\.")}/`),
      "potluck-mesh on the hub",
      upMs,
    );

    expect(agent.output()).toContain(
      `coordinator http://127.0.0.1:${hubPorts.coordinator} unreachable: connect ECONNREFUSED 127.0.0.1:${hubPorts.coordinator}: bringing potluck0 up with the roster saved at`,
    );

    up = await startUp();
    expect(up.output()).toContain(`NATS listens on this hub's mesh address ${hubMeshIp} only`);
    expect((await natsSockets("listening")).map((s) => s.local)).toEqual([`${hubMeshIp}:4222`]);
    const lan = await natsProbe(mallory, hub.underlayIp);
    expect(lan.what, JSON.stringify(lan)).toBe("ECONNREFUSED");
    // mac, whose agent and sidecar kept running, reconnects at the mesh address: its heartbeats
    // reach the restarted coordinator (a fresh one: mac is online only once they arrive again).
    const macMeshIp = (await roster()).machines.find((m) => m.name === "mac")?.meshIp;
    const reconnected = await pollUntil(
      async () => (await natsSockets("established")).some((c) => c.peer.startsWith(`${macMeshIp}:`)),
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    expect(reconnected, JSON.stringify(await natsSockets("established"))).toBe(true);
  }, 900_000);
});
