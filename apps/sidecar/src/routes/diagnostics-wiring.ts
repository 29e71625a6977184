import { Defaults, type Health } from "@potluck/protocol";
import {
  Diagnostics,
  httpCoordinatorProbe,
  httpFirewallProbe,
  httpPeerClient,
  httpSelfClient,
  peerRosterSource,
  tcpUnderlayProbe,
  wgTunnelReader,
  type PeerFirewallSource,
  type Probes,
} from "@potluck/diagnostics";
import type { PeerClient, PeerRoster } from "@potluck/peer";

export interface SidecarDiagnosticsOptions {
  machine: string;
  owner: string;
  interfaceName: string;
  port: number;
  peerPort: number;
  startedAt: number;
  isWarm: () => boolean;
  /**
   * The peer client the router uses (signed with this machine's identity): a probe and the diagnosis of its failure
   * travel the same pools.
   */
  client: PeerClient;
  coordinatorUrl?: string;
  /** The roster source the peer directory reads (a roster file, or the coordinator's), when this machine has one. */
  roster?: PeerRoster;
  /** The local fw-watcher; its default port on loopback unless given. */
  fwWatcherUrl?: string;
  /** Peers' fw-watcher statuses (from NATS), when this sidecar can hear them. */
  peerFirewall?: PeerFirewallSource;
}

/** Diagnostics with the real probes: in-process health, the coordinator, `wg`, signed HTTP to peers, the fw-watcher. */
export function createSidecarDiagnostics(options: SidecarDiagnosticsOptions): Diagnostics {
  const { machine, coordinatorUrl, roster } = options;
  const probes: Probes = {
    // This code runs inside the sidecar, so answering at all proves the process is up; warming is reported as such.
    local: {
      health: async (): Promise<Health> => ({
        status: options.isWarm() ? "ok" : "warming",
        machine,
        uptimeS: (Date.now() - options.startedAt) / 1000,
      }),
    },
    tunnel: wgTunnelReader(),
    peer: httpPeerClient({ requester: { machine, owner: options.owner }, client: options.client }),
    firewall: httpFirewallProbe({ url: options.fwWatcherUrl ?? `http://127.0.0.1:${Defaults.fwWatcherPort}` }),
    // The local path is checked the way a local app uses it: the OpenAI API on loopback, unsigned.
    self: httpSelfClient({ url: `http://127.0.0.1:${options.port}`, machine }),
    // A peer on this LAN that answers on its own address is up: a mesh timeout is then a firewall.
    underlay: tcpUnderlayProbe(),
  };
  if (options.peerFirewall !== undefined) probes.peerFirewall = options.peerFirewall;
  if (coordinatorUrl !== undefined) probes.coordinator = httpCoordinatorProbe({ url: coordinatorUrl });
  if (roster !== undefined) probes.roster = peerRosterSource(roster);
  return new Diagnostics({
    from: machine,
    interfaceName: options.interfaceName,
    localPort: options.port,
    peerPort: options.peerPort,
    probes,
  });
}
