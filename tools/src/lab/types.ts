/** The lab's public shapes; see /work/lab-contract.md (other projects code against these). */

export interface LabOptions {
  /** Hosts with a WireGuard `potluck0`; default ["mac", "linux", "windows"]. */
  hosts?: string[];
  /** Hosts on the home LAN WITHOUT potluck0, e.g. ["hub"] for coordinator/NATS. */
  extraHosts?: string[];
  /** Default true: every potluck0 peered statically. False: no potluck0 (`potluck join` makes it). */
  mesh?: boolean;
  /** Unique run id (lowercase letters/digits, 4–8 chars); default random. Every name carries it. */
  id?: string;
  /**
   * Default false. True: a veth from the calling (root) namespace onto the home LAN, address
   * `lab.rootIp` (198.18.n.1), so services the test runs in-process are reachable from every host.
   */
  rootLink?: boolean;
  /**
   * Pins every process started on a host (wireguard-go included) to one CPU with taskset, so hosts
   * that stand for separate machines do not share a core on this box. Default: no pinning.
   */
  cpus?: Readonly<Record<string, number>>;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Merged over this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Kill the command (SIGKILL) after this long; the result then has code 124. Default 60 s. */
  timeoutMs?: number;
  input?: string;
  cwd?: string;
}

export interface SpawnOptions {
  /** Merged over this process's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface LabProcess {
  name: string;
  pid: number;
  /** Everything it wrote to stdout and stderr so far (the last 1 MiB). */
  output(): string;
  /** Resolves with the exit code, or the signal name, when it ends. */
  exited: Promise<number | string>;
  /** SIGTERM its process group, SIGKILL after a grace period; resolves once it is gone. */
  stop(): Promise<void>;
}

export interface LabHost {
  name: string;
  /** The network namespace, e.g. "pl-3f9a1c-mac". */
  netns: string;
  /** Home-LAN address, e.g. "198.18.7.2". */
  underlayIp: string;
  /** Interface name of the home-LAN link inside the host (addition to the contract). */
  underlayDev: string;
  /** Mesh address on potluck0, e.g. "100.64.0.2"; null for extra hosts or mesh:false. */
  meshIp: string | null;
  wgPrivateKey: string | null;
  wgPublicKey: string | null;
  /** WireGuard listen port of potluck0 (addition to the contract). */
  wgListenPort: number | null;
  /** Per-host scratch dir on the root fs (data dirs); `runDir/wireguard` is its /var/run/wireguard. */
  runDir: string;
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  spawn(name: string, argv: string[], opts?: SpawnOptions): LabProcess;
}

export type Undo = () => Promise<void>;

export interface LabFaults {
  /** Table `inet mullvad`, default-drop input/output accepting only lo and the underlay. */
  mullvadKillswitch(host: string): Promise<Undo>;
  /** Table `ip filter`, chain `ts-input` dropping 100.64.0.0/10 sources not on tailscale0. */
  tailscaleCgnatDrop(host: string): Promise<Undo>;
  /** Frames larger than `mtuBlackholeBytes` on that host's underlay link vanish, both ways. */
  mtuBlackhole(host: string): Promise<Undo>;
  /**
   * Stop its lab processes and wireguard-go, links down. Undo: links up, potluck0 back (not the caller's processes).
   */
  powerOff(host: string): Promise<Undo>;
  /** Stop its lab processes (not wireguard-go): host answers, nothing listens. Undo is a no-op. */
  stopProcesses(host: string): Promise<Undo>;
  /** Delete and recreate that VPN's table, as real clients do on reconnect (drops foreign rules). */
  vpnReconnect(host: string, vpn: "mullvad" | "tailscale"): Promise<void>;
}

export interface Lab {
  id: string;
  hosts: LabHost[];
  host(name: string): LabHost;
  faults: LabFaults;
  /** Seconds since the latest handshake `from` has with `to`, or null if none (or `from` is down). */
  handshakeAgeS(from: string, to: string): Promise<number | null>;
  /** Forget `from`'s sessions with every peer so the next handshake is a new one (addition). */
  rehandshake(from: string): Promise<void>;
  /** The namespace holding the home-LAN bridge (addition). */
  lanNetns: string;
  /** e.g. "198.18.7.0/24" (addition). */
  underlayCidr: string;
  /** The root namespace's address on the home LAN when `rootLink` was set, else null (addition). */
  rootIp: string | null;
  /** Idempotent: kills processes, deletes netns/bridge/veths/dirs. */
  teardown(): Promise<void>;
}
