import { ProbeSizes } from "@potluck/peer";

/**
 * Every budget diagnostics spends, in one place. A full check walks nine layers, so the sum of
 * the per-layer budgets bounds how long one report can take (about 45 s in the worst case, which
 * is the first-token budget on a slow CPU; a path that fails early costs a few seconds at most).
 */
export const DiagnosticsLimits = {
  /** The sidecar answers its own /health from memory: anything slower than this is a hung process. */
  localTimeoutMs: 1_500,
  /** The coordinator is one HTTP hop away, usually on the LAN. */
  coordinatorTimeoutMs: 2_000,
  /** `wg show` talks to a local socket; a slower answer means wireguard-go is wedged. */
  wgTimeoutMs: 2_000,
  /**
   * A handshake older than WireGuard's REJECT_AFTER_TIME (180 s) proves nothing: the session it
   * made can no longer carry data. A peer with traffic rekeys every 120 s, so a live one is
   * always fresher than this.
   */
  handshakeFreshMs: 180_000,
  /**
   * After nudging an idle tunnel, how long to wait for a handshake: one REKEY_TIMEOUT (5 s, the
   * retry interval of an unanswered initiation) plus a second of slack, so a single lost
   * initiation packet is not reported as "no handshake".
   */
  handshakeWaitMs: 6_000,
  handshakePollMs: 200,
  /**
   * After a probe times out, how long to watch potluck0 for a sign of life from the peer's
   * WireGuard: a peer that receives data and sends nothing back answers with a keepalive within
   * KEEPALIVE_TIMEOUT (10 s), so one second more tells "dropped after the tunnel" (firewall) from
   * "nobody there" (powered off) even when the last handshake is still recent.
   */
  liveWaitMs: 11_000,
  livePollMs: 250,
  /** A heartbeat the coordinator received this recently proves the peer is up (interval 5 s, two missed allowed). */
  heartbeatFreshMs: 12_000,
  /**
   * A TCP connection attempt to the peer's on-link underlay address: one LAN round trip answers
   * it (SYN-ACK or RST); a host that says nothing within a second is not answering.
   */
  underlayTimeoutMs: 1_000,
  /**
   * A peer fw-watcher status heard this recently describes its firewall now: the watcher
   * publishes at once on a change and every 30 s otherwise, plus slack for one late message.
   */
  peerFirewallFreshMs: 35_000,
  /**
   * A failing check whose failure turns visible this soon waits for that moment (rechecking the
   * path meanwhile) instead of leaving it to the next check: the failure is named when it becomes
   * visible, not up to one small-probe timeout plus a refresh interval later.
   */
  confirmHoldMs: 3_000,
  /** The tiny probe crosses the mesh in one packet each way; two seconds is many LAN round trips. */
  smallProbeTimeoutMs: 2_000,
  /** The probe sizes routing uses too (libs/peer `ProbeSizes`, which says why): one path, one verdict. */
  smallProbeBytes: ProbeSizes.smallBytes,
  largeProbeBytes: ProbeSizes.largeBytes,
  largeProbeTimeoutMs: 3_000,
  capabilitiesTimeoutMs: 3_000,
  /** One token from a warm model; generous because a CPU-only peer may be busy with other work. */
  firstTokenTimeoutMs: 30_000,
  /** The fw-watcher is on loopback and reads the ruleset for us (one `nft -j list`, slow on a loaded box). */
  firewallTimeoutMs: 3_000,
  /** Reapplying inserts three rules with nft; a few seconds at most. */
  firewallReapplyTimeoutMs: 10_000,
  /**
   * Results are reused this long so a dashboard, a CLI and a router asking at once cost one probe.
   * Shorter than the dashboard's refresh, so each refresh sees a new reading.
   */
  cacheTtlMs: 1_500,
  /** Cached reports and failure states kept at once; names outside the roster also get a report. */
  cacheEntriesMax: 256,
  /** Peers one overview checks; a household is a handful, the limit protects the sidecar. */
  peersMax: 64,
  /** Overview checks run this many paths at once. */
  concurrencyMax: 8,
  /** Bytes of a peer's HTTP answer read at most; capabilities are a few kilobytes. */
  responseBytesMax: 256 * 1024,
} as const;

/** The budgets with plain numbers, so a caller (a test, a bench) may pass its own. */
export type DiagnosticsBudget = { [K in keyof typeof DiagnosticsLimits]: number };

/**
 * How long each layer's failure must persist before it is shown. Recovery always shows at once.
 * These follow the repair loops below each layer, so that a fault the system fixes by itself
 * never flashes on the dashboard, while a real one shows soon after.
 */
export const TimeToVisibleMs = {
  /** Our own process: if it does not answer, nothing else matters and no loop will fix it. */
  localSidecar: 0,
  /** A coordinator restart or LAN blip lasts a few seconds. */
  coordinator: 4_000,
  /** Roster facts are data, not flaps: an unknown name or a stale key does not heal by itself. */
  roster: 0,
  /** One WireGuard retry (REKEY_TIMEOUT, 5 s) plus slack: one lost initiation is not an outage. */
  tunnel: 6_000,
  /** Relayed vs direct is informational. */
  path: 0,
  /**
   * The fw-watcher repairs a VPN reconnect that wiped the potluck0 rules within one tick
   * (POTLUCK_FW_WATCH_INTERVAL, 5 s by default); one second of slack over that keeps a repair
   * that works from ever showing as a failure.
   */
  dataPlane: 6_000,
  /** A peer restarting its sidecar answers again within a couple of seconds. */
  capabilities: 2_000,
  /** Loading and failed are states the runtime itself reports; nothing to debounce. */
  modelRuntime: 0,
  /** One slow generation is not a broken runtime. */
  firstToken: 2_000,
} as const;
