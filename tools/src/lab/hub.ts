import { createPublicKey, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { privateKeyFromPem, publicKeyToBase64 } from "@potluck/peer";
import { natsServerAuthConfig, Roster } from "@potluck/protocol";
import { repoRoot, serviceEntry } from "../lib/repo.js";
import { pollUntil } from "./run.js";
import type { Lab, LabHost, LabProcess } from "./types.js";

/**
 * The household's hub in the lab: one host on the home LAN running nats-server (JetStream) and the
 * coordinator on embedded PGlite, and the `potluck token create` + `potluck join --follow` dance
 * that enrolls a lab host into it. Every lab suite that needs a roster starts from here.
 */
export const hubPorts = { coordinator: 8320, nats: 4222 } as const;

/** Several node processes per host on a loaded 2-core machine: starting one can take minutes. */
export const hubStartMs = 240_000;

export interface Hub {
  host: LabHost;
  coordinator: LabProcess;
  /** The coordinator as the other hosts reach it, over the home LAN. */
  coordinatorUrl: string;
  /**
   * The hub's NATS with its token (nats://TOKEN@ip:4222): over the home LAN, or with `onMesh` at
   * the hub's mesh address, the only address its nats-server listens on then.
   */
  natsUrl: string;
  /** With `onMesh`: the hub machine's potluck0 address, where NATS and (after a join) the roster are reached. */
  meshIp?: string;
  /** The NATS subject root of this run, so concurrent suites can share nothing by accident. */
  prefix: string;
  /** The environment every potluck process of this run gets: the subject root, no stray secrets. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** A host's potluck data directory (keys, stores), inside its own run directory. */
  dataDir(host: LabHost): string;
  /**
   * `potluck token create` on the hub, then `potluck join … --follow` on `host` until it has joined;
   * `owner`: the token is made for that owner (a guest household), else the hub's own.
   */
  join(host: LabHost, name?: string, options?: { owner?: string }): Promise<LabProcess>;
  roster(): Promise<Roster>;
  /**
   * Until the coordinator has a heartbeat from each of `names`: `join` returns once enrolled, and
   * a machine's first heartbeat can land a moment later. Throws with the roster's states.
   */
  waitOnline(names: readonly string[], timeoutMs?: number): Promise<void>;
  /** An admin call to the coordinator with its admin secret, from the hub; returns the HTTP status. */
  admin(method: string, path: string, body?: unknown): Promise<number>;
  /** The hub's public signing key (base64): what machines pin, and what a ledger takes as POTLUCK_COORDINATOR_KEY. */
  signingKey(): string;
  /**
   * `potluck ledger grant ACCOUNT DELTA` on the hub, signed with its key as the household admin
   * does it, posted to the ledger at `ledgerUrl` (as the hub reaches it). Throws with the CLI's output.
   */
  grant(ledgerUrl: string, account: string, delta: number, eventId: string): Promise<void>;
}

/** Waits for `pattern` in a process's output; throws with its output if it exits or times out first. */
export async function waitForOutput(
  proc: LabProcess,
  pattern: RegExp,
  what: string,
  timeoutMs = hubStartMs,
): Promise<void> {
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const ok = await pollUntil(() => exited || pattern.test(proc.output()), { timeoutMs, intervalMs: 200 });
  if (!ok || exited) throw new Error(`${what}: ${proc.output().slice(-2000)}`);
}

export interface StartHubOptions {
  /** Coordinator settings on top (POTLUCK_HUB_MACHINE for a hub that spokes join). */
  coordinatorEnv?: NodeJS.ProcessEnv;
  /**
   * The hub as a household should run it: its own machine joins the mesh as `hubName` (the
   * roster names it the hub), and nats-server then listens on its mesh address only, so a
   * machine on the LAN cannot even connect; joined machines reach NATS and the roster there,
   * inside WireGuard. The coordinator still answers on the LAN, for enrollment.
   */
  onMesh?: boolean;
}

/**
 * Starts nats-server and the coordinator on `hubName` (a host of `lab`, usually an extra host).
 * With `onMesh` it also joins the hub's own machine and moves NATS onto its mesh address.
 */
export async function startHub(lab: Lab, hubName = "hub", options: StartHubOptions = {}): Promise<Hub> {
  const host = lab.host(hubName);
  const prefix = `t${randomBytes(4).toString("hex")}`;
  const potluck = join(repoRoot, "bin/potluck.mjs");
  const localCoordinator = `http://127.0.0.1:${hubPorts.coordinator}`;
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    // Lab hosts merge this over the runner's environment: an undefined value (which Node leaves
    // out of a child's environment) is what removes a variable. The coordinator runs on embedded
    // PGlite in its data dir, whatever DATABASE_URL the test runner has.
    return {
      ...process.env,
      DATABASE_URL: undefined,
      POTLUCK_COORDINATOR_ADMIN_SECRET: undefined,
      POTLUCK_NATS_PREFIX: prefix,
      // Each lab host has its own loopback, but a machine's own Ollama port is no test's to take.
      POTLUCK_OLLAMA_PORT: "0",
      ...extra,
    };
  };
  const dataDir = (h: LabHost) => join(h.runDir, "potluck");
  const hubData = dataDir(host);
  // The hub's NATS demands a token, as a household should run it: every service and `join` in
  // the lab reaches it through URLs that carry the token, so a connect site that dropped the
  // credentials would fail the lab suites.
  const natsToken = randomBytes(16).toString("hex");
  const natsUrl = `nats://${natsToken}@${host.underlayIp}:${hubPorts.nats}`;
  const coordinatorUrl = `http://${host.underlayIp}:${hubPorts.coordinator}`;

  const natsConfig = join(host.runDir, "nats-auth.conf");
  writeFileSync(natsConfig, natsServerAuthConfig(natsUrl) ?? "", { mode: 0o600 });
  const startNats = async (address: string): Promise<LabProcess> => {
    const nats = host.spawn("nats", [
      "/usr/sbin/nats-server",
      "-c",
      natsConfig,
      "-js",
      "-sd",
      join(host.runDir, "nats"),
      "-a",
      address,
      "-p",
      String(hubPorts.nats),
    ]);
    await waitForOutput(nats, /Server is ready/, `starting nats-server in ${hubName}`);
    return nats;
  };
  const startCoordinator = async (natsHost: string): Promise<LabProcess> => {
    const proc = host.spawn("coordinator", [process.execPath, "--import", "tsx", serviceEntry.coordinator], {
      env: env({
        POTLUCK_DATA_DIR: hubData,
        POTLUCK_NATS_URL: `nats://${natsToken}@${natsHost}:${hubPorts.nats}`,
        POTLUCK_COORDINATOR_PORT: String(hubPorts.coordinator),
        ...(options.onMesh === true ? { POTLUCK_HUB_MACHINE: hubName } : {}),
        ...options.coordinatorEnv,
      }),
    });
    await waitForOutput(proc, /coordinator listening/, `starting the coordinator in ${hubName}`);
    return proc;
  };
  // With onMesh, NATS starts on loopback only until the hub's machine has a mesh address.
  let nats = await startNats(options.onMesh === true ? "127.0.0.1" : "0.0.0.0");
  let coordinator = await startCoordinator("127.0.0.1");

  const roster = async (): Promise<Roster> => {
    const res = await host.exec(["curl", "-sf", `${localCoordinator}/v1/roster`], { timeoutMs: 30_000 });
    return Roster.parse(JSON.parse(res.stdout));
  };
  const hub: Hub = {
    host,
    coordinator,
    coordinatorUrl,
    natsUrl,
    prefix,
    env,
    dataDir,
    async join(joiner, name = joiner.name, options = {}) {
      const owner = options.owner === undefined ? [] : ["--owner", options.owner];
      const created = await host.exec(
        [
          process.execPath,
          potluck,
          "token",
          "create",
          "--data-dir",
          hubData,
          "--coordinator",
          localCoordinator,
          ...owner,
        ],
        { env: env(), timeoutMs: 120_000 },
      );
      if (created.code !== 0) throw new Error(`potluck token create: ${created.stderr}`);
      const follower = joiner.spawn(
        "join",
        [
          process.execPath,
          potluck,
          "join",
          coordinatorUrl,
          created.stdout.trim(),
          "--name",
          name,
          "--data-dir",
          dataDir(joiner),
          "--follow",
          "--nats",
          natsUrl,
        ],
        { env: env() },
      );
      await waitForOutput(follower, /joined as/, `potluck join on ${joiner.name}`);
      return follower;
    },
    roster,
    async waitOnline(names, timeoutMs = 60_000) {
      let states = "";
      const online = await pollUntil(
        async () => {
          const machines = (await roster()).machines;
          states = machines.map((m) => `${m.name} ${m.state}`).join(", ");
          return names.every((name) => machines.some((m) => m.name === name && m.state === "online"));
        },
        { timeoutMs, intervalMs: 250 },
      );
      if (!online) throw new Error(`not online within ${timeoutMs / 1000} s: ${names.join(", ")} (roster: ${states})`);
    },
    signingKey() {
      const pem = readFileSync(join(hubData, "coordinator", "signing-ed25519.pem"), "utf8");
      return publicKeyToBase64(createPublicKey(privateKeyFromPem(pem)));
    },
    async grant(ledgerUrl, account, delta, eventId) {
      const argv = [process.execPath, potluck, "ledger", "grant", account, String(delta), "--reason", "lab grant"];
      argv.push("--id", eventId, "--url", ledgerUrl, "--data-dir", hubData);
      const granted = await host.exec(argv, { env: env(), timeoutMs: 120_000 });
      if (granted.code !== 0)
        throw new Error(`potluck ledger grant on ${host.name}: ${granted.stderr}${granted.stdout}`);
    },
    async admin(method, path, body) {
      const secret = readFileSync(join(hubData, "coordinator", "admin-secret"), "utf8").trim();
      const argv = [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        method,
        "-H",
        `authorization: Bearer ${secret}`,
        "-H",
        "content-type: application/json",
      ];
      if (body !== undefined) argv.push("-d", JSON.stringify(body));
      const res = await host.exec([...argv, `${localCoordinator}${path}`], { timeoutMs: 30_000 });
      return Number(res.stdout);
    },
  };
  if (options.onMesh !== true) return hub;
  // The hub's own machine joins (given NATS by its LAN address, as any machine is: the join moves
  // it to the mesh address), then NATS and the coordinator restart on that address.
  await hub.join(host, hubName);
  const meshIp = (await roster()).machines.find((m) => m.name === hubName)?.meshIp;
  if (meshIp === undefined) throw new Error(`the hub machine ${hubName} is not on the roster after joining`);
  await coordinator.stop();
  await nats.stop();
  nats = await startNats(meshIp);
  coordinator = await startCoordinator(meshIp);
  return { ...hub, coordinator, meshIp, natsUrl: `nats://${natsToken}@${meshIp}:${hubPorts.nats}` };
}
