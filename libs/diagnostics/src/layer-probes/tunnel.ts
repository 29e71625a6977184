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
  let relay: Pick<Learned, "relayVia" | "relayKey"> = {};
  try {
    const peers = await run.probes.tunnel.peers(run.path.interfaceName, timeout(limits.wgTimeoutMs));
    relay = await findRelay(run, learned, peers);
    learned = { ...learned, ...relay };
    peer = carrierOf(peers, learned);
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
  // Relayed: the tunnel that matters is the one to the hub, whose handshake is checked below.
  if (relay.relayVia !== undefined) detail.relayVia = relay.relayVia;
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
  const tunnelPeer = { tunnelPeer: peer ?? first, ...relay };
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

/**
 * Direct, relayed via the hub, or through a relay endpoint: read by the tunnel layer. Relayed via
 * the hub is a state, not a failure (the mesh agent moved the peer's address onto the hub's peer
 * because the direct path was silent, and moves it back by itself): reported with what it costs,
 * one small probe's round trip through the hub against the last direct one measured here.
 */
export const pathProbe = probeFor(pathCheck, async (run, learned): Promise<Step<KeysOf<typeof pathCheck>>> => {
  if (run.self) return { outcome: noMeshHop };
  const peer = learned.tunnelPeer;
  if (peer === undefined)
    return { outcome: skipped(`${run.path.interfaceName} could not be read, so the path is unknown`) };
  if (learned.relayVia !== undefined) return { outcome: ok, detail: await relayCost(run, learned, learned.relayVia) };
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

/**
 * The WireGuard peer that carries the peer's traffic: the relaying machine's when the tunnel layer
 * found one (`relayKey`), else the peer with the roster's key.
 */
export async function readTunnelPeer(run: Run, learned: Learned): Promise<TunnelPeer | undefined> {
  return carrierOf(await run.probes.tunnel.peers(run.path.interfaceName, timeout(run.limits.wgTimeoutMs)), learned);
}

function carrierOf(peers: readonly TunnelPeer[], learned: Learned): TunnelPeer | undefined {
  const key = learned.relayKey ?? learned.entry?.wireguardPublicKey;
  return peers.find((p) => p.publicKey === key);
}

/**
 * Whether another roster machine's WireGuard peer (the hub's) carries the peer's mesh address:
 * WireGuard routes each address to exactly one peer, so that is where its traffic goes — a spoke,
 * or a machine the mesh agent relays because its direct path is silent. A carrier that is no
 * roster machine (a stale key of the peer itself) is no relay: the key check names it.
 */
async function findRelay(
  run: Run,
  learned: Learned,
  peers: readonly TunnelPeer[],
): Promise<Pick<Learned, "relayVia" | "relayKey">> {
  const entry = learned.entry;
  if (entry === undefined) return {};
  const carrier = peers.find((p) => p.allowedIps.includes(`${entry.meshIp}/32`));
  if (carrier === undefined || carrier.publicKey === entry.wireguardPublicKey) return {};
  const machines = (await run.probes.roster?.list(timeout(run.limits.coordinatorTimeoutMs)).catch(() => [])) ?? [];
  const relay = machines.find((m) => m.wireguardPublicKey === carrier.publicKey && m.name !== entry.name);
  return relay === undefined ? {} : { relayVia: relay.name, relayKey: carrier.publicKey };
}

/**
 * One small probe through the hub, timed; bounded by the small probe's budget. A probe that fails
 * leaves the cost unknown and the data-plane layer, next, names what is wrong.
 */
async function relayCost(run: Run, learned: Learned, relayVia: string): Promise<Details<KeysOf<typeof pathCheck>>> {
  const detail: Details<KeysOf<typeof pathCheck>> = { relayVia };
  if (learned.tunnelPeer?.endpoint != null) detail.endpoint = learned.tunnelPeer.endpoint;
  const started = run.clock.now();
  const answered = await run.probes.peer
    .probe(learned.target, run.limits.smallProbeBytes, timeout(run.limits.smallProbeTimeoutMs))
    .then(
      () => true,
      () => false,
    );
  if (!answered) return detail;
  const rttMs = run.clock.now() - started;
  detail.relayRttMs = rttMs.toFixed(1);
  if (run.directRtt !== undefined) detail.relayAddedMs = Math.max(0, rttMs - run.directRtt.ms).toFixed(1);
  return detail;
}
