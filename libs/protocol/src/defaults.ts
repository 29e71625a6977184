/**
 * Names and defaults from DESIGN.md, in one place so every app, the CLI and the lab agree.
 */
export const Defaults = {
  /** The mesh WireGuard interface every machine brings up. */
  interfaceName: "potluck0",
  /** 1280 is the IPv6 minimum MTU: it survives WireGuard-over-WireGuard and relays (field note 1). */
  meshMtu: 1280,
  /** CGNAT space, the same range Tailscale uses; the coordinator allocates inside it. */
  meshCidr: "100.64.0.0/10",
  sidecarPort: 8321,
  coordinatorPort: 8320,
  ledgerPort: 8322,
  fwWatcherPort: 8323,
  natsUrl: "nats://127.0.0.1:4222",
  fwWatchIntervalS: 5,
  /** WireGuard's own listen port on every machine. */
  wireguardPort: 51820,
} as const;

/** Headers Potluck adds to HTTP; lower-case because HTTP/2 and fetch normalise them so. */
export const Headers = {
  servedBy: "x-potluck-served-by",
  machine: "x-potluck-machine",
  timestamp: "x-potluck-timestamp",
  nonce: "x-potluck-nonce",
  signature: "x-potluck-signature",
} as const;
