import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
  /** The hub's NATS over the home LAN, with its token (nats://TOKEN@ip:4222). */
  natsUrl: string;
  /** The NATS subject root of this run, so concurrent suites can share nothing by accident. */
  prefix: string;
  /** The environment every potluck process of this run gets: the subject root, no stray secrets. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** A host's potluck data directory (keys, stores), inside its own run directory. */
  dataDir(host: LabHost): string;
  /**
   * `potluck token create` on the hub, then `potluck join … --follow` on `host` until it has joined.
   * `owner`: the owner the hub's admin binds into the token (default: the hub's own household).
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

/**
 * Starts nats-server and the coordinator on `hubName` (a host of `lab`, usually an extra host);
 * `coordinatorEnv` adds coordinator settings (POTLUCK_HUB_MACHINE for a hub that spokes join).
 */
export async function startHub(
  lab: Lab,
  hubName = "hub",
  options: { coordinatorEnv?: NodeJS.ProcessEnv } = {},
): Promise<Hub> {
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
  const nats = host.spawn("nats", [
    "/usr/sbin/nats-server",
    "-c",
    natsConfig,
    "-js",
    "-sd",
    join(host.runDir, "nats"),
    "-a",
    "0.0.0.0",
    "-p",
    String(hubPorts.nats),
  ]);
  await waitForOutput(nats, /Server is ready/, `starting nats-server in ${hubName}`);
  const coordinator = host.spawn("coordinator", [process.execPath, "--import", "tsx", serviceEntry.coordinator], {
    env: env({
      POTLUCK_DATA_DIR: hubData,
      POTLUCK_NATS_URL: `nats://${natsToken}@127.0.0.1:${hubPorts.nats}`,
      POTLUCK_COORDINATOR_PORT: String(hubPorts.coordinator),
      ...options.coordinatorEnv,
    }),
  });
  await waitForOutput(coordinator, /coordinator listening/, `starting the coordinator in ${hubName}`);

  const roster = async (): Promise<Roster> => {
    const res = await host.exec(["curl", "-sf", `${localCoordinator}/v1/roster`], { timeoutMs: 30_000 });
    return Roster.parse(JSON.parse(res.stdout));
  };
  return {
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
}
