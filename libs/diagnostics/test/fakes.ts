import type { Capabilities, FwStatus, RosterEntry } from "@potluck/protocol";
import {
  Diagnostics,
  ProbeError,
  type Clock,
  type DiagnosticsOptions,
  type PeerTarget,
  type Probes,
  type TunnelPeer,
} from "../src/index.js";

/** A clock tests move by hand: sleeping advances it, so no test waits for real time. */
export class FakeClock implements Clock {
  constructor(public ms = Date.parse("2026-06-14T21:00:00Z")) {}
  now = () => this.ms;
  sleep = async (ms: number) => {
    this.ms += ms;
  };
  advance(ms: number) {
    this.ms += ms;
  }
}

export const keys = {
  linux: "bGludXhsaW51eGxpbnV4bGludXhsaW51eGxpbnV4bGk=",
  other: "b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyb3Q=",
  mac: "bWFjbWFjbWFjbWFjbWFjbWFjbWFjbWFjbWFjbWFjbWE=",
};

export function rosterEntry(name: string, meshIp: string, key: string, extra: Partial<RosterEntry> = {}): RosterEntry {
  return {
    id: `id-${name}`,
    name,
    owner: "home",
    meshIp,
    wireguardPublicKey: key as RosterEntry["wireguardPublicKey"],
    identityPublicKey: key as RosterEntry["identityPublicKey"],
    endpoints: ["198.18.7.3:51820"],
    state: "online",
    lastHeartbeatAt: null,
    staleKey: false,
    ...extra,
  };
}

export function capabilities(models: Capabilities["models"], machine = "linux"): Capabilities {
  return {
    machine,
    owner: "home",
    version: "0.1.0",
    status: "ready",
    models,
    embedder: null,
    memory: { peerSearchEnabled: false, records: 0 },
    hardware: { platform: "linux", arch: "x64", cpus: 8, memoryBytes: 16e9, gpu: null },
  };
}

type ProbeBehaviour = "ok" | ProbeError;

/** Every knob a scenario turns; the fake probes read it on each call. */
export interface World {
  local: ProbeBehaviour;
  coordinator: ProbeBehaviour;
  roster: RosterEntry[];
  tunnel: TunnelPeer[] | Error;
  /** When set, a nudge makes the peer's handshake fresh (an idle tunnel that is healthy). */
  handshakeOnNudge: boolean;
  smallProbe: ProbeBehaviour;
  largeProbe: ProbeBehaviour;
  capabilities: Capabilities | ProbeError;
  firstToken: ProbeBehaviour;
  firewall: FwStatus | null;
  /** The peer's WireGuard is up: our probes make it send something back (a reply or a keepalive). */
  peerWireguardAlive: boolean;
  /** This machine's firewall drops potluck0 output: probes never enter the tunnel. */
  localOutputDropped: boolean;
  /** The next small probe times out once, then the path answers again (a fault that clears). */
  smallProbeFailsOnce?: boolean;
  /** Small probes time out until the clock reaches this (a fault that clears by itself, even mid-check). */
  smallProbeFailsUntil?: number;
  /** When set, an underlay probe exists and the peer's LAN address answers (true) or stays silent (false). */
  underlayAnswers?: boolean;
  /** When set, what the peer's fw-watcher last published (NATS), and when it arrived. */
  peerFirewall?: { status: FwStatus; receivedAtMs: number };
  calls: string[];
}

export const refused = () => new ProbeError("refused", "connection refused");
export const timedOut = () => new ProbeError("timeout", "no answer within the time budget");
export const httpError = (status: number, code = "unavailable") =>
  new ProbeError("http", `HTTP ${status}`, { status, code, message: "model loading" });

export function healthyWorld(clock: FakeClock): World {
  return {
    local: "ok",
    coordinator: "ok",
    roster: [rosterEntry("mac", "100.64.0.2", keys.mac), rosterEntry("linux", "100.64.0.3", keys.linux)],
    tunnel: [
      {
        publicKey: keys.linux,
        endpoint: "198.18.7.3:51820",
        allowedIps: ["100.64.0.3/32"],
        latestHandshakeAtMs: clock.ms - 20_000,
        rxBytes: 1,
        txBytes: 1,
      },
    ],
    handshakeOnNudge: false,
    smallProbe: "ok",
    largeProbe: "ok",
    capabilities: capabilities([{ id: "tiny", state: "ready", testModel: true }]),
    firstToken: "ok",
    firewall: null,
    peerWireguardAlive: true,
    localOutputDropped: false,
    calls: [],
  };
}

export function fwStatus(missing: boolean, machine = "mac"): FwStatus {
  const state = missing ? "missing" : "present";
  return {
    machine,
    interfaceName: "potluck0",
    vpns: { tailscale: false, mullvad: true },
    rules: [
      { family: "inet", table: "mullvad", chain: "input", rule: "iifname potluck0 accept", state },
      { family: "inet", table: "mullvad", chain: "output", rule: "oifname potluck0 accept", state },
      { family: "ip", table: "filter", chain: "ts-input", rule: "iifname potluck0 accept", state: "not_applicable" },
    ],
    intact: !missing,
    lastReapplyAt: null,
    reapplyCount: 0,
    lastError: null,
    checkedAt: new Date().toISOString(),
  };
}

const settle = (b: ProbeBehaviour) => (b === "ok" ? Promise.resolve() : Promise.reject(b));

export function fakeProbes(world: World, clock: FakeClock): Probes {
  const log = (what: string) => world.calls.push(what);
  return {
    local: {
      health: async () => (log("local"), await settle(world.local), { status: "ok", machine: "mac", uptimeS: 1 }),
    },
    coordinator: { url: "http://198.18.7.1:8320", health: async () => (log("coordinator"), settle(world.coordinator)) },
    roster: {
      lookup: async (name) => (log("roster"), world.roster.find((m) => m.name === name) ?? null),
      list: async () => world.roster,
    },
    tunnel: {
      peers: async () => {
        log("wg");
        if (world.tunnel instanceof Error) throw world.tunnel;
        return world.tunnel.map((p) => ({ ...p }));
      },
    },
    peer: {
      nudge: async () => {
        log("nudge");
        if (world.handshakeOnNudge && Array.isArray(world.tunnel))
          for (const p of world.tunnel) p.latestHandshakeAtMs = clock.ms;
      },
      probe: async (_t: PeerTarget, bytes: number) => {
        log(`probe:${bytes}`);
        if (Array.isArray(world.tunnel) && !world.localOutputDropped) {
          for (const p of world.tunnel) {
            // The probe's bytes plus TCP/IP headers and WireGuard's overhead, as the real counter grows.
            p.txBytes += bytes + 92;
            if (world.peerWireguardAlive) p.rxBytes += 32;
          }
        }
        if (bytes <= 100 && world.smallProbeFailsUntil !== undefined && clock.ms < world.smallProbeFailsUntil)
          throw timedOut();
        if (bytes <= 100 && world.smallProbeFailsOnce === true) {
          world.smallProbeFailsOnce = false;
          throw timedOut();
        }
        return settle(bytes > 100 ? world.largeProbe : world.smallProbe);
      },
      capabilities: async () => {
        log("capabilities");
        if (world.capabilities instanceof ProbeError) throw world.capabilities;
        return world.capabilities;
      },
      firstToken: async (t: PeerTarget) => (
        log("infer"),
        await settle(world.firstToken),
        { text: "hi", servedBy: t.name }
      ),
    },
    firewall: { status: async () => world.firewall, reapply: async () => (world.firewall = fwStatus(false)) },
    ...(world.underlayAnswers === undefined
      ? {}
      : { underlay: { hostAnswers: async (ip: string) => (log(`underlay:${ip}`), world.underlayAnswers === true) } }),
    peerFirewall: {
      latest: (machine: string) =>
        world.peerFirewall !== undefined && world.peerFirewall.status.machine === machine ? world.peerFirewall : null,
    },
  };
}

export function makeDiagnostics(world: World, clock: FakeClock, extra: Partial<DiagnosticsOptions> = {}) {
  return new Diagnostics({
    from: "mac",
    interfaceName: "potluck0",
    localPort: 8321,
    peerPort: 8321,
    probes: fakeProbes(world, clock),
    clock,
    ...extra,
  });
}
