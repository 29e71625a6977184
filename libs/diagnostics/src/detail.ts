/**
 * The facts a probe may record for a check's messages, as Tailscale types its warning args: one
 * const object of keys and the union derived from it. Each check declares the keys its probe may
 * record (`Check.detailKeys`); messages read any key an earlier layer recorded, so a typo is a
 * type error rather than a message that quietly prints its fallback.
 */
export const DetailKey = {
  /** local-sidecar: the status the local sidecar's health check reported. */
  health: "health",
  /** Any layer: what the failing call said, as `describe` words it. */
  error: "error",
  /** roster: the WireGuard key the roster holds for the peer. */
  rosterKey: "rosterKey",
  /** roster: the state the roster reports for the peer (online, offline, …). */
  rosterState: "rosterState",
  /** tunnel, path: the peer's WireGuard endpoint, host:port. */
  endpoint: "endpoint",
  /** path: the endpoints the peer advertises in the roster, comma-separated. */
  advertised: "advertised",
  /** path: why the tunnel goes through a relay. */
  relayReason: "relayReason",
  /** tunnel, path: the machine (the hub) whose WireGuard peer carries the peer's address. */
  relayVia: "relayVia",
  /** path: a small probe's round trip to the peer through the hub, in milliseconds. */
  relayRttMs: "relayRttMs",
  /** path: what the hub adds over the last direct round trip this machine measured to the peer. */
  relayAddedMs: "relayAddedMs",
  /** tunnel: when the last handshake happened, as printable text ("never", "12 s ago"). */
  lastHandshake: "lastHandshake",
  /** tunnel: the age of a fresh handshake in seconds. */
  handshakeAgeS: "handshakeAgeS",
  /** tunnel, data-plane: what the local fw-watcher said about this machine's firewall. */
  firewall: "firewall",
  /** data-plane: what tells a firewall drop from a dead peer. */
  evidence: "evidence",
  /** data-plane: the machine whose firewall drops the mesh. */
  firewallHost: "firewallHost",
  /** data-plane: "remote" when the drop is on the peer. */
  firewallSide: "firewallSide",
  /** data-plane: what the peer's fw-watcher reports: "intact", "missing" or "unknown". */
  peerWatcher: "peerWatcher",
  /** data-plane: the peer's fw-watcher's summary of its rules. */
  peerFirewall: "peerFirewall",
  /** data-plane: the peer's fw-watcher's last error. */
  peerWatcherError: "peerWatcherError",
  /** data-plane: seconds since the peer's fw-watcher read the ruleset it reported. */
  peerWatcherReadingAgeS: "peerWatcherReadingAgeS",
  /** data-plane (blamed on the tunnel): seconds the peer stayed silent after a probe. */
  silentS: "silentS",
  /** capabilities: how many models the peer reports. */
  models: "models",
  /** model-runtime: every model the peer has, with its state. */
  available: "available",
  /** model-runtime: a loading model's progress, in percent. */
  progress: "progress",
  /** model-runtime: why a model failed to load. */
  reason: "reason",
  /** first-token: the machine that served the token. */
  servedBy: "servedBy",
  /** first-token: how long the first token took, in milliseconds. */
  firstTokenMs: "firstTokenMs",
  /** first-token: a recent success was reused instead of a new generation; its age in seconds. */
  reusedAgeS: "reusedAgeS",
} as const;
export type DetailKey = (typeof DetailKey)[keyof typeof DetailKey];

/** Facts recorded under some of the keys `K`, as printable text. */
export type Details<K extends DetailKey = DetailKey> = Partial<Record<K, string>>;
