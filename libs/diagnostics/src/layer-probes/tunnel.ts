import type { Details } from "../detail.js";
import { Failure, pathCheck, tunnelCheck } from "../layers.js";
import type { TunnelPeer } from "../probes.js";
import { describe } from "./errors.js";
import { readLocalFirewall } from "./firewall-evidence.js";
import { fail, ok, probeFor, skipped, timeout, type KeysOf, type Learned, type Run, type Step } from "./run.js";

const noMeshHop = skipped("this machine: no mesh hop");

/**
 * A fresh handshake proves the two WireGuard endpoints exchanged packets recently. An idle
 * tunnel has none, so before calling it broken, send it traffic and give WireGuard one retry.
 */
export const tunnelProbe = probeFor(tunnelCheck, async (run, learned): Promise<Step<KeysOf<typeof tunnelCheck>>> => {
  if (run.self) return { outcome: noMeshHop };
  const { clock, limits } = run;
  let peer: TunnelPeer | undefined;
  try {
    peer = await readTunnelPeer(run, learned);
  } catch (error) {
    const described = describe(error);
    // Without the right to read WireGuard, say so and let the data plane test the path itself.
    const unreadable = /permission denied|operation not permitted|EACCES|EPERM/i.test(described);
    return { outcome: fail(unreadable ? Failure.tunnelUnreadable : Failure.noInterface), detail: { error: described } };
  }
  if (peer === undefined) return { outcome: fail(Failure.peerNotConfigured) };
  const first = peer;
  const detail: Details<(typeof tunnelCheck.detailKeys)[number]> =
    peer.endpoint === null ? {} : { endpoint: peer.endpoint };
  const fresh = (p: TunnelPeer | undefined) =>
    p?.latestHandshakeAtMs != null && clock.now() - p.latestHandshakeAtMs < limits.handshakeFreshMs;
  if (!fresh(peer)) {
    // Bounded by handshakeWaitMs; a read that fails keeps the last answer, one that no longer lists the peer clears it.
    const deadline = clock.now() + limits.handshakeWaitMs;
    void run.probes.peer.nudge(learned.target, timeout(limits.handshakeWaitMs));
    while (!fresh(peer) && clock.now() < deadline) {
      await clock.sleep(limits.handshakePollMs);
      peer = await readTunnelPeer(run, learned).catch(() => peer);
    }
  }
  const tunnelPeer = { tunnelPeer: peer ?? first };
  const last = peer?.latestHandshakeAtMs ?? null;
  detail.lastHandshake = last === null ? "never" : `${Math.round((clock.now() - last) / 1000)} s ago`;
  if (!fresh(peer)) {
    const local = await readLocalFirewall(run);
    return {
      outcome: local.blocking ? fail(Failure.firewallDrop, true) : fail(Failure.noHandshake),
      detail: { ...detail, ...local.detail },
      learned: tunnelPeer,
    };
  }
  detail.handshakeAgeS = String(Math.max(0, Math.round((clock.now() - (last ?? 0)) / 1000)));
  return { outcome: ok, detail, learned: tunnelPeer };
});

/** Direct or relayed: the endpoint WireGuard uses for the peer, read by the tunnel layer. */
export const pathProbe = probeFor(pathCheck, async (run, learned): Promise<Step<KeysOf<typeof pathCheck>>> => {
  if (run.self) return { outcome: noMeshHop };
  const peer = learned.tunnelPeer;
  if (peer === undefined)
    return { outcome: skipped(`${run.path.interfaceName} could not be read, so the path is unknown`) };
  const endpoint = peer.endpoint;
  if (endpoint === null) return { outcome: fail(Failure.noEndpoint) };
  const advertised = learned.entry?.endpoints ?? [];
  const detail = { endpoint, advertised: advertised.join(", ") };
  if (!run.relays.has(endpoint)) return { outcome: ok, detail };
  const relayReason =
    advertised.length === 0
      ? `${run.path.peer} advertises no endpoint`
      : `no direct UDP answer from ${advertised.join(", ")}`;
  return { outcome: fail(Failure.relayed), detail: { ...detail, relayReason } };
});

/** The peer as the mesh interface lists it now, found by the key the roster holds for it. */
export async function readTunnelPeer(run: Run, learned: Learned): Promise<TunnelPeer | undefined> {
  const key = learned.entry?.wireguardPublicKey;
  const peers = await run.probes.tunnel.peers(run.path.interfaceName, timeout(run.limits.wgTimeoutMs));
  return peers.find((p) => p.publicKey === key);
}
