import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { platform } from "node:os";
import { join } from "node:path";
import { humanLogLine, messageOf, resolveDataDir } from "@potluck/service";
import { Defaults, natsServerAuthConfig, natsServerUrls, redactNatsUrl } from "@potluck/protocol";
import { readMeshState, withHost } from "@potluck/mesh";
import { hubNatsListen, localAddress } from "../../lib/hub-nats.js";
import { httpOk, natsDemandsAuth, tcpAnswers } from "../../lib/net.js";
import { serviceEntry, tsNodeArgs, type ServiceName } from "../../lib/repo.js";
import { startSupervised, stopSupervised, waitFor, type Supervised } from "../../lib/supervisor.js";
import { CliError, type Command } from "../command.js";

const usage = `Usage: potluck up [--hub] [--data-dir DIR] [--port N] [--no-fw-watcher]

Starts the local stack with embedded defaults: the sidecar (port ${Defaults.sidecarPort}), the
coordinator and the ledger (embedded PGlite unless DATABASE_URL is set), and the firewall watcher
where the OS allows it (Linux with nft, as root). NATS is POTLUCK_NATS_URL (default
${Defaults.natsUrl}); if nothing answers there and nats-server is installed, potluck starts one
with JetStream in the data directory. Without NATS only the sidecar runs, and potluck says why.
--hub makes this machine the household's hub: the NATS server potluck starts listens on every
interface (the other machines' \`potluck join --follow --nats\` and sidecars use it), not only
on loopback; once the hub's own machine joined its mesh (the coordinator's POTLUCK_HUB_MACHINE),
on its mesh address alone, where joined machines reach it inside WireGuard. The coordinator always listens on every interface (POTLUCK_BIND).
Ctrl-C stops everything.`;

/** How long a service may take to answer /health before `up` gives up on it. */
const healthTimeoutMs = 120_000;
/** Restarts of crashed services allowed within the window before `up` gives up on the stack. */
const restartsMax = 3;
const restartWindowMs = 10 * 60_000;

export const upCommand: Command = {
  name: "up",
  summary: "start the local stack (sidecar, coordinator, ledger, fw-watcher)",
  usage,
  flags: { strings: ["data-dir", "port"], booleans: ["no-fw-watcher", "hub"], positionals: false },
  async run(_argv, { flags }) {
    const dataDir = resolveDataDir(flags.get("data-dir"));
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const env: NodeJS.ProcessEnv = { ...process.env, POTLUCK_DATA_DIR: dataDir };
    if (flags.has("port")) env.POTLUCK_PORT = flags.get("port");
    const sidecarPort = Number(env.POTLUCK_PORT ?? Defaults.sidecarPort);

    const procs: Supervised[] = [];
    const stopAll = async () => {
      // Reverse start order: the sidecar goes first, NATS last, so nothing loses its broker mid-drain.
      for (const proc of [...procs].reverse()) await stopSupervised(proc);
    };
    let stopping = false;
    const onSignal = () => {
      if (stopping) return;
      stopping = true;
      process.stdout.write("\npotluck: stopping…\n");
      void stopAll().then(() => process.exit(0));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    // A hub on its own mesh: NATS on its mesh address only, and every service here reaches it there.
    const listen = flags.has("hub") ? hubNatsListen(readMeshState(dataDir), localAddress) : undefined;
    if (listen?.kind === "mesh")
      env.POTLUCK_NATS_URL = withHost(env.POTLUCK_NATS_URL ?? Defaults.natsUrl, listen.address);
    const nats =
      listen?.kind === "mesh-down"
        ? {
            ok: false,
            reason: `this hub joined its mesh at ${listen.address}, where its NATS listens, but no interface carries that address yet: start the mesh agent (potluck-mesh) first`,
          }
        : await ensureNats(env, dataDir, flags.has("hub"), listen?.kind === "mesh" ? listen.address : undefined);
    if (nats.proc !== undefined) procs.push(nats.proc);
    const services: ServiceName[] = [];
    if (nats.ok) services.push("coordinator", "ledger");
    else process.stdout.write(`potluck: running the sidecar alone: ${nats.reason}\n`);
    const fw = fwWatcherAllowed(flags.has("no-fw-watcher"));
    if (fw.ok && nats.ok) services.push("fw-watcher");
    else if (!fw.ok) process.stdout.write(`potluck: not starting the firewall watcher: ${fw.reason}\n`);
    services.push("sidecar");

    const envOf = (name: ServiceName) => serviceEnv(name, env, services);
    for (const name of services) {
      procs.push(
        startSupervised({
          name,
          command: process.execPath,
          args: tsNodeArgs(serviceEntry[name]),
          env: envOf(name),
          onLine: relayLine,
        }),
      );
    }
    // "up" means every service answers, not just the sidecar: the coordinator (migrations first)
    // can come up later than it, and a join token asked for in between would be refused.
    for (const name of services) {
      const url = healthUrl(name, env);
      if (url === undefined || (await waitFor(() => httpOk(url), { timeoutMs: healthTimeoutMs }))) continue;
      await stopAll();
      throw new CliError(`the ${name} did not answer ${url} within ${healthTimeoutMs / 1000} s; see its log above`);
    }
    process.stdout.write(
      `potluck: up — sidecar http://127.0.0.1:${sidecarPort} (${services.join(", ")}). Ctrl-C stops everything.\n`,
    );
    process.stdout.write(await modelsSummary(`http://127.0.0.1:${sidecarPort}`));

    // A service that dies on its own is started again, as systemd's Restart=on-failure would (the
    // ledger exits by design when its database connection breaks mid-append); one that keeps
    // dying, or NATS, fails the whole stack: stop the rest and say which.
    const restarts: number[] = [];
    for (;;) {
      const first = await Promise.race(procs.map((p, index) => p.exited.then((code) => ({ proc: p, index, code }))));
      if (stopping) return 0;
      const now = Date.now();
      while (restarts.length > 0 && (restarts[0] ?? now) < now - restartWindowMs) restarts.shift();
      const name = first.proc.name;
      if (name !== "nats" && restarts.length < restartsMax) {
        restarts.push(now);
        process.stdout.write(
          `potluck: ${name} exited (${first.code}); restarting it (${restarts.length} of at most ${restartsMax} in ${restartWindowMs / 60_000} min)\n`,
        );
        procs[first.index] = startSupervised({
          name,
          command: process.execPath,
          args: tsNodeArgs(serviceEntry[name as ServiceName]),
          env: envOf(name as ServiceName),
          onLine: relayLine,
        });
        continue;
      }
      stopping = true;
      await stopAll();
      throw new CliError(
        `${name} exited (${first.code})${name === "nats" ? "" : ` after ${restartsMax} restarts`}; stopped the rest of the stack`,
      );
    }
  },
};

/** Each service's log line on this terminal: readable text, or pino's JSON with POTLUCK_LOG_FORMAT=json. */
function relayLine(name: string, line: string): void {
  const text = process.env.POTLUCK_LOG_FORMAT === "json" ? line : humanLogLine(line);
  process.stdout.write(`[${name}] ${text}\n`);
}

/**
 * A service's environment in this stack. The ledger applies a usage event only when the roster
 * says its signer may move that account; it reads the roster from the coordinator started beside
 * it (over loopback, its key pinned on first use) unless POTLUCK_COORDINATOR_URL names another.
 * Only the ledger gets it: for the sidecar that variable means "this machine has joined".
 */
export function serviceEnv(name: ServiceName, env: NodeJS.ProcessEnv, services: readonly ServiceName[]) {
  if (name !== "ledger" || !services.includes("coordinator") || env.POTLUCK_COORDINATOR_URL !== undefined) return env;
  const port = env.POTLUCK_COORDINATOR_PORT ?? Defaults.coordinatorPort;
  return { ...env, POTLUCK_COORDINATOR_URL: `http://127.0.0.1:${port}` };
}

/** Where each service says it is up; the ports follow the same variables the services read. */
function healthUrl(name: ServiceName, env: NodeJS.ProcessEnv): string | undefined {
  const port = {
    sidecar: env.POTLUCK_PORT ?? Defaults.sidecarPort,
    coordinator: env.POTLUCK_COORDINATOR_PORT ?? Defaults.coordinatorPort,
    ledger: env.POTLUCK_LEDGER_PORT ?? Defaults.ledgerPort,
    "fw-watcher": env.POTLUCK_FW_PORT ?? Defaults.fwWatcherPort,
  }[name];
  // Port 0 asks for any free port: nothing fixed to wait on (tests run the watcher that way).
  return String(port) === "0" ? undefined : `http://127.0.0.1:${port}/health`;
}

/** POTLUCK_NATS_URL as URLs; a malformed one is the user's to fix, named, not a stack trace. */
function parseNatsList(list: string): URL[] {
  try {
    return natsServerUrls(list).map((entry) => {
      const url = new URL(entry);
      if (url.protocol !== "nats:") throw new Error(`got a ${url.protocol}// URL`);
      return url;
    });
  } catch (error) {
    throw new CliError(
      `POTLUCK_NATS_URL: expected nats://[SECRET@]HOST:PORT, or several separated by commas (${messageOf(error)})`,
      2,
    );
  }
}

async function ensureNats(
  env: NodeJS.ProcessEnv,
  dataDir: string,
  hub: boolean,
  meshAddress?: string,
): Promise<{ ok: boolean; reason?: string; proc?: Supervised }> {
  const list = env.POTLUCK_NATS_URL ?? Defaults.natsUrl;
  const servers = parseNatsList(list);
  const shown = redactNatsUrl(list);
  // A cluster (several servers listed) is used when any of its servers answers; `up` starts a
  // server of its own only for one local URL, never a member of someone's cluster.
  if (servers.length > 1) {
    for (const server of servers)
      if (await tcpAnswers(server.hostname, Number(server.port || 4222))) return { ok: true };
    return {
      ok: false,
      reason: `none of the ${servers.length} NATS servers in POTLUCK_NATS_URL answers (${shown}); potluck up starts a NATS server itself only for a single local URL`,
    };
  }
  const href = list;
  const url = servers[0] as URL;
  const host = url.hostname;
  const port = Number(url.port || 4222);
  if (await tcpAnswers(host, port)) {
    if (hub) {
      process.stdout.write(
        `potluck: --hub: using the NATS already at ${shown}; the other machines need it on this machine's LAN address\n`,
      );
      // A secret in the URL protects nothing if the server that already runs does not ask for it.
      if (natsServerAuthConfig(href) !== undefined && (await natsDemandsAuth(host, port)) === false) {
        process.stdout.write(
          `potluck: --hub: warning: that NATS server asks no credentials, so anyone on the LAN can use it; restart it with authorization, or stop it and let potluck start one\n`,
        );
      }
    }
    return { ok: true };
  }
  const local = host === "127.0.0.1" || host === "localhost" || host === meshAddress;
  const binary = which("nats-server");
  if (!local || binary === undefined) {
    return { ok: false, reason: `no NATS answers at ${shown}${local ? " and nats-server is not installed" : ""}` };
  }
  const storeDir = join(dataDir, "nats");
  mkdirSync(storeDir, { recursive: true });
  // Loopback only unless this machine is the hub: a broker is not for the whole LAN by default.
  // A hub on its own mesh listens on its mesh address alone (hub-nats.ts).
  const listen = meshAddress ?? (hub ? "0.0.0.0" : "127.0.0.1");
  const args = ["-js", "-sd", storeDir, "-a", listen, "-p", String(port)];
  // Credentials in POTLUCK_NATS_URL (nats://TOKEN@… or nats://USER:PASS@…) become the server's own
  // demand, so the URL that starts the hub is the one every machine connects with.
  const auth = natsServerAuthConfig(href);
  if (auth !== undefined) {
    const file = join(dataDir, "nats-auth.conf");
    writeFileSync(file, auth, { mode: 0o600 });
    chmodSync(file, 0o600);
    args.push("-c", file);
  } else if (hub) {
    process.stdout.write(
      "potluck: --hub: NATS takes anyone on the LAN; to require a token, start with POTLUCK_NATS_URL=nats://TOKEN@127.0.0.1:4222 and give the other machines nats://TOKEN@THIS-HOST:4222\n",
    );
  }
  const proc = startSupervised({ name: "nats", command: binary, args });
  if (await waitFor(() => tcpAnswers(host, port), { timeoutMs: 10_000 })) {
    if (meshAddress !== undefined)
      process.stdout.write(
        `potluck: --hub: NATS listens on this hub's mesh address ${meshAddress} only: joined machines reach it inside WireGuard, nothing on the LAN can connect\n`,
      );
    return { ok: true, proc };
  }
  await stopSupervised(proc);
  return { ok: false, reason: `started nats-server but it did not answer on ${host}:${port}` };
}

function fwWatcherAllowed(disabled: boolean): { ok: boolean; reason?: string } {
  if (disabled) return { ok: false, reason: "--no-fw-watcher" };
  if (platform() !== "linux") return { ok: false, reason: `it is Linux only (this is ${platform()})` };
  if (which("nft") === undefined) return { ok: false, reason: "nft (nftables) is not installed" };
  if (process.getuid?.() !== 0) return { ok: false, reason: "it needs root to edit nftables" };
  return { ok: true };
}

function which(binary: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${binary}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * What the sidecar offers once up. Models load on first use, so "available" is the normal state
 * at start (not "no model is ready"); `potluck ask` then shows the load's progress.
 */
async function modelsSummary(base: string): Promise<string> {
  const res = await fetch(`${base}/v1/models`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  const body = (await res?.json().catch(() => undefined)) as
    { data?: Array<{ id: string; potluck?: { state?: string; reason?: string } }> } | undefined;
  const models = body?.data;
  if (models === undefined) return "";
  if (models.length === 0) return "potluck: no models here; other machines' models are used through routing\n";
  const line = (m: (typeof models)[number]) => {
    const state = m.potluck?.state;
    const how = state === "available" ? "available, loads on first use" : (state ?? "unknown");
    return `  ${m.id} (${how}${state === "failed" && m.potluck?.reason !== undefined ? `: ${m.potluck.reason}` : ""})`;
  };
  return `potluck: models here:\n${models.map(line).join("\n")}\n`;
}
