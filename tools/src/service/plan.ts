import { posix, win32 } from "node:path";
import {
  Defaults,
  natsServerAuthConfig,
  ServiceNames,
  withHost,
  type MeshState,
  type ServiceKey,
} from "@potluck/protocol";
import { platformDataDir } from "@potluck/service";
import { renderEnvFile, settingsFromEnv } from "./env-file.js";
import type { ServiceHost } from "./host.js";
import { hubNatsListen } from "../lib/hub-nats.js";

export type ServiceOs = "linux" | "darwin" | "win32";

/** One service as every OS's generator sees it. */
export interface ServiceSpec {
  key: ServiceKey;
  /** The installed name (ServiceNames): systemd unit, Windows service id, launchd label's tail. */
  name: string;
  description: string;
  /** The program and its arguments; settings come from the env file, not from here. */
  argv: string[];
  /** What stopping runs first (the fw-watcher removes its own rules); systemd only. */
  stopArgv?: string[];
  /** Node services read the env file with --env-file where the OS has no EnvironmentFile=. */
  node: boolean;
  /** Edits interfaces or firewalls: root only (system units, a LaunchDaemon). */
  needsRoot: boolean;
  /** systemd: units to order after, beyond the network. */
  after?: string[];
  /** systemd: extra [Service] lines (sandboxing), each with the comment that says why. */
  systemdExtra?: SystemdLine[];
}

export type SystemdLine = readonly [key: string, value: string] | { comment: string };

export interface ServicePlan {
  os: ServiceOs;
  /** system: root's units/daemons, started at boot; user: the invoking user's. */
  scope: "system" | "user";
  hub: boolean;
  dataDir: string;
  /** Holds the env file (and the NATS auth file on the hub), mode 0700. */
  configDir: string;
  envFile: string;
  envFileText: string;
  /** NATS's own auth file when POTLUCK_NATS_URL carries credentials (the hub only). */
  natsAuth?: { path: string; text: string };
  /** Where unit files / plists / WinSW folders go. */
  unitDir: string;
  /** Where logs go on darwin and Windows (journald keeps them on Linux). */
  logDir: string;
  services: ServiceSpec[];
  skipped: { name: string; reason: string }[];
}

export interface PlanOptions {
  hub: boolean;
  dataDir?: string;
  /** What `potluck join` saved in the data dir: a hub on its own mesh binds NATS to its mesh address. */
  meshState?: MeshState;
}

/** Which services, for the hub or not, with which programs, paths and settings file, on this host. */
export function planServices(host: ServiceHost, options: PlanOptions): ServicePlan {
  const os = serviceOs(host.platform);
  const path = os === "win32" ? win32 : posix;
  const scope = host.root ? "system" : "user";
  const dataDir =
    options.dataDir ??
    (host.env.POTLUCK_DATA_DIR || platformDataDir({ platform: host.platform, env: host.env, home: host.home }));
  const dirs = locations(os, scope, host);
  const envFile = path.join(dirs.configDir, "potluck.env");
  const bin = (name: string, ...args: string[]) => [
    host.nodePath,
    path.join(host.repoRoot, "bin", `${name}.mjs`),
    ...args,
  ];
  const services: ServiceSpec[] = [];
  const skipped: ServicePlan["skipped"] = [];

  services.push({
    key: "sidecar",
    name: ServiceNames.sidecar,
    description: "Potluck sidecar (this machine's models, memory and peer API)",
    argv: bin(ServiceNames.sidecar),
    node: true,
    needsRoot: false,
  });
  const mesh: ServiceSpec = {
    key: "mesh",
    name: ServiceNames.mesh,
    description: "Potluck mesh agent (the WireGuard mesh, following the coordinator roster)",
    argv: bin(ServiceNames.mesh),
    node: true,
    needsRoot: true,
  };
  if (scope === "system") services.push(mesh);
  else skipped.push({ name: mesh.name, reason: "it drives WireGuard, so it needs root: sudo potluck service install" });

  let natsAuth: ServicePlan["natsAuth"];
  // The settings every service reads; on a hub on its own mesh, NATS is moved to where it listens.
  const settingsEnv: NodeJS.ProcessEnv = { ...host.env };
  if (options.hub) {
    services.push(
      {
        key: "coordinator",
        name: ServiceNames.coordinator,
        description: "Potluck coordinator (enrollment, roster and liveness of the household)",
        argv: bin(ServiceNames.coordinator),
        node: true,
        needsRoot: false,
        after: [`${ServiceNames.nats}.service`, "postgresql.service"],
      },
      {
        key: "ledger",
        name: ServiceNames.ledger,
        description: "Potluck ledger (the household's credit ledger)",
        argv: bin(ServiceNames.ledger),
        node: true,
        needsRoot: false,
        after: [`${ServiceNames.nats}.service`, "postgresql.service"],
      },
    );
    const natsServer = host.which(os === "win32" ? "nats-server.exe" : "nats-server");
    if (natsServer === undefined) {
      skipped.push({
        name: ServiceNames.nats,
        reason: "nats-server is not installed (install it, then run this again)",
      });
    } else {
      const url = host.env.POTLUCK_NATS_URL ?? Defaults.natsUrl;
      const auth = natsServerAuthConfig(url);
      const port = new URL(url).port || "4222";
      // A hub whose own machine joined its mesh listens on its mesh address alone (as `up --hub`
      // does, lib/hub-nats.ts): no machine on the LAN can even connect, and the secret never
      // crosses it. At boot the address may come a moment after NATS starts: the unit fails to
      // bind and is restarted (Restart=on-failure) until the mesh agent has brought potluck0 up.
      // A hub that never joined serves the household on every address. With a secret in
      // POTLUCK_NATS_URL the server demands that same secret (its own file, mode 0600).
      const listen = hubNatsListen(options.meshState, () => true);
      const address = listen.kind === "lan" ? "0.0.0.0" : listen.address;
      const argv = [natsServer, "-js", "-sd", path.join(dataDir, "nats"), "-a", address, "-p", port];
      if (auth !== undefined) {
        natsAuth = { path: path.join(dirs.configDir, "nats-auth.conf"), text: auth };
        argv.push("-c", natsAuth.path);
      }
      services.push({
        key: "nats",
        name: ServiceNames.nats,
        description: "Potluck NATS (JetStream broker of the hub)",
        argv,
        node: false,
        needsRoot: false,
        ...(listen.kind === "lan" ? {} : { after: [`${ServiceNames.mesh}.service`] }),
      });
      // The hub's own coordinator, ledger and sidecar connect where that server listens, as under
      // `potluck up --hub`: a loopback URL in the settings file would reach nothing.
      if (listen.kind !== "lan") settingsEnv.POTLUCK_NATS_URL = withHost(url, address);
    }
  }

  if (os === "linux" && scope === "system") services.push(fwWatcherSpec(bin(ServiceNames.fwWatcher)));
  else
    skipped.push({
      name: ServiceNames.fwWatcher,
      reason:
        os === "linux"
          ? "it edits nftables, so it needs root"
          : `not applicable on this OS (${os}): it edits Linux nftables`,
    });

  return {
    os,
    scope,
    hub: options.hub,
    dataDir,
    configDir: dirs.configDir,
    envFile,
    envFileText: renderEnvFile(dataDir, settingsFromEnv(settingsEnv)),
    ...(natsAuth === undefined ? {} : { natsAuth }),
    unitDir: dirs.unitDir,
    logDir: dirs.logDir,
    services,
    skipped,
  };
}

/** The fw-watcher, from `bin` (its program without arguments): Linux system units only. */
export function fwWatcherSpec(bin: readonly string[]): ServiceSpec {
  return {
    key: "fwWatcher",
    name: ServiceNames.fwWatcher,
    description: "Potluck firewall watcher (potluck0 accept rules for Tailscale/Mullvad)",
    argv: [...bin, "--watch"],
    // Stopping the service closes the hole it keeps open: only its own rules go, nothing else.
    stopArgv: [...bin, "--uninstall"],
    node: true,
    needsRoot: true,
    after: ["nftables.service", "tailscaled.service", "mullvad-daemon.service"],
    systemdExtra: [
      { comment: "nft needs CAP_NET_ADMIN and nothing more; the rest of the system stays out of reach." },
      ["User", "root"],
      ["CapabilityBoundingSet", "CAP_NET_ADMIN"],
      ["AmbientCapabilities", "CAP_NET_ADMIN"],
      ["NoNewPrivileges", "yes"],
      ["ProtectSystem", "strict"],
      ["ProtectHome", "read-only"],
      ["PrivateTmp", "yes"],
      ["PrivateDevices", "yes"],
      ["ProtectKernelTunables", "yes"],
      ["ProtectKernelModules", "yes"],
      ["ProtectControlGroups", "yes"],
      ["RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
      ["RestrictNamespaces", "yes"],
      ["LockPersonality", "yes"],
      ["SystemCallArchitectures", "native"],
    ],
  };
}

export function serviceOs(platform: NodeJS.Platform): ServiceOs {
  if (platform === "linux" || platform === "darwin" || platform === "win32") return platform;
  throw new Error(`potluck service supports Linux (systemd), macOS (launchd) and Windows; this is ${platform}`);
}

function locations(
  os: ServiceOs,
  scope: "system" | "user",
  host: ServiceHost,
): { configDir: string; unitDir: string; logDir: string } {
  const { home, env } = host;
  if (os === "linux") {
    if (scope === "system") return { configDir: "/etc/potluck", unitDir: "/etc/systemd/system", logDir: "journal" };
    const config = env.XDG_CONFIG_HOME || posix.join(home, ".config");
    return {
      configDir: posix.join(config, "potluck"),
      unitDir: posix.join(config, "systemd", "user"),
      logDir: "journal",
    };
  }
  if (os === "darwin") {
    if (scope === "system")
      return {
        configDir: "/Library/Application Support/Potluck",
        unitDir: "/Library/LaunchDaemons",
        logDir: "/Library/Logs/Potluck",
      };
    return {
      configDir: posix.join(home, "Library", "Application Support", "Potluck"),
      unitDir: posix.join(home, "Library", "LaunchAgents"),
      logDir: posix.join(home, "Library", "Logs", "Potluck"),
    };
  }
  // Windows services run as LocalSystem: machine-wide ProgramData, not the installing user's profile.
  const programData = env.ProgramData || env.PROGRAMDATA || "C:\\ProgramData";
  const configDir = win32.join(programData, "Potluck");
  return { configDir, unitDir: win32.join(configDir, "services"), logDir: win32.join(configDir, "logs") };
}
