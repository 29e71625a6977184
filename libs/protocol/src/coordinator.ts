import { z } from "zod";
import { Endpoint, IdentityKey, IsoTime, MachineName, MeshIp, OwnerName, WireguardKey } from "./common.js";

export const TokenCreateRequest = z.object({
  reusable: z.boolean().default(false),
  /** Seconds until the token expires; an hour by default, a week at most. */
  ttlS: z
    .number()
    .int()
    .min(60)
    .max(7 * 24 * 3600)
    .default(3600),
  /**
   * The owner every machine enrolled with this token belongs to; absent, the coordinator's own
   * household owner. The token fixes it: the joining machine cannot choose another.
   */
  owner: OwnerName.optional(),
});
export type TokenCreateRequest = z.infer<typeof TokenCreateRequest>;

export const TokenCreated = z.object({
  token: z.string(),
  expiresAt: IsoTime,
  reusable: z.boolean(),
  owner: OwnerName,
});
export type TokenCreated = z.infer<typeof TokenCreated>;

export const EnrollRequest = z.object({
  token: z.string().min(16).max(256),
  name: MachineName,
  /**
   * Only an assertion: the owner comes from the join token. A join that names another owner is
   * refused (403 owner_mismatch) rather than enrolled under an owner it did not expect.
   */
  owner: OwnerName.optional(),
  wireguardPublicKey: WireguardKey,
  identityPublicKey: IdentityKey,
  endpoints: z.array(Endpoint).max(16).default([]),
});
export type EnrollRequest = z.infer<typeof EnrollRequest>;

export const MachineState = z.enum(["online", "offline", "never_seen"]);
export type MachineState = z.infer<typeof MachineState>;

export const RosterEntry = z.object({
  id: z.string().min(1),
  name: MachineName,
  owner: OwnerName,
  meshIp: MeshIp,
  wireguardPublicKey: WireguardKey,
  identityPublicKey: IdentityKey,
  endpoints: z.array(Endpoint),
  state: MachineState,
  lastHeartbeatAt: IsoTime.nullable(),
  /** The tunnel key this machine last reported differs from the roster's: a stale WireGuard key. */
  staleKey: z.boolean(),
});
export type RosterEntry = z.infer<typeof RosterEntry>;

export const Roster = z.object({
  version: z.number().int().nonnegative(),
  machines: z.array(RosterEntry),
  /**
   * The roster machine on the coordinator's host (POTLUCK_HUB_MACHINE): the one peer a spoke
   * (Windows, a phone, any WireGuard app) needs, with AllowedIPs = the whole mesh. Absent or null
   * when the hub's admin named none; its key, address and endpoint are its roster entry's.
   */
  hub: MachineName.nullable().optional(),
});
export type Roster = z.infer<typeof Roster>;

export const EnrollResponse = z.object({
  machine: RosterEntry,
  interfaceName: z.string(),
  prefixLength: z.number().int().min(8).max(32),
  mtu: z.number().int().min(576).max(9000),
  peers: z.array(RosterEntry),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;

export const KeyRotateRequest = z.object({
  wireguardPublicKey: WireguardKey.optional(),
  identityPublicKey: IdentityKey.optional(),
});
export type KeyRotateRequest = z.infer<typeof KeyRotateRequest>;

/** potluck.heartbeat.<machine>. `sentAt` is informational: the coordinator judges by receive time. */
export const Heartbeat = z.object({
  machine: MachineName,
  wireguardPublicKey: WireguardKey,
  seq: z.number().int().nonnegative(),
  sentAt: IsoTime,
  status: z.enum(["ok", "warming"]),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

/** potluck.roster.changed */
export const RosterChanged = z.object({
  version: z.number().int().nonnegative(),
  reason: z.enum(["enrolled", "removed", "key_rotated", "state_changed", "stale_key"]),
  machine: MachineName,
});
export type RosterChanged = z.infer<typeof RosterChanged>;

/**
 * Heartbeat timing, shared by the sidecars that send and the coordinator that judges.
 * Silence is measured on the coordinator's own clock from the moment it received the last
 * heartbeat (peer clocks are not trusted). A machine is offline only after `offlineAfterMs` of
 * silence: two whole intervals (one lost or late message is not an outage) plus the reconnect
 * grace, which covers a NATS client reconnect (2 s between tries, a few tries, then its buffered
 * heartbeat is flushed). So a brief drop never shows as offline, and a dead machine shows within
 * 20 s. After the coordinator's own NATS connection comes back, silence is counted from the
 * reconnect plus the grace, because the gap was the coordinator's and every machine needs time
 * to be heard again.
 */
export const HeartbeatTiming = {
  intervalMs: 5_000,
  reconnectGraceMs: 10_000,
  offlineAfterMs: 2 * 5_000 + 10_000,
} as const;

/** Limits the coordinator enforces; every list and retry it owns is bounded by one of these. */
export const CoordinatorLimits = {
  /** Addresses 100.64.0.1 … 100.127.255.254: the /10 minus network and broadcast. */
  meshAddressesMax: 2 ** 22 - 2,
  /** Machines one roster answer lists; a household is a handful, a community a few thousand. */
  rosterMachinesMax: 10_000,
  /** Unused tokens kept at once: creation is refused past this, so a leaked admin secret can't fill the disk. */
  tokensActiveMax: 1_000,
  /** Request bodies are small JSON documents. */
  bodyBytesMax: 64 * 1024,
} as const;

/** Error codes the coordinator answers with, beyond the shared ones: each names what is wrong. */
export const CoordinatorErrorCode = {
  tokenUnknown: "token_unknown",
  tokenExpired: "token_expired",
  tokenUsed: "token_used",
  nameTaken: "name_taken",
  keyTaken: "key_taken",
  meshFull: "mesh_full",
  /** The roster holds CoordinatorLimits.rosterMachinesMax machines: one more would not be listed. */
  rosterFull: "roster_full",
  machineUnknown: "machine_unknown",
  adminRequired: "admin_required",
  /** The join named an owner other than the one its token was issued for. */
  ownerMismatch: "owner_mismatch",
} as const;
export type CoordinatorErrorCode = (typeof CoordinatorErrorCode)[keyof typeof CoordinatorErrorCode];

/**
 * The headers on every coordinator answer a machine relies on (roster, enrollment): the hub's
 * Ed25519 public key (32 raw bytes, base64) and its signature over the answer (libs/peer
 * signing-coordinator.ts).
 */
export const CoordinatorAnswerHeaders = {
  key: "x-potluck-coordinator-key",
  signature: "x-potluck-coordinator-signature",
} as const;

/** The header that carries the coordinator's admin secret (`Authorization: Bearer <secret>` works too). */
export const CoordinatorAdminHeader = "x-potluck-admin-secret";

/** What a machine keeps after `potluck join`: enough to rebuild potluck0 and follow the roster. */
export const MeshState = z.object({
  coordinatorUrl: z.url(),
  machineId: z.string().min(1),
  name: MachineName,
  owner: OwnerName,
  meshIp: MeshIp,
  prefixLength: z.number().int().min(8).max(32),
  mtu: z.number().int().min(576).max(9000),
  interfaceName: z.string().min(1).max(15),
  listenPort: z.number().int().min(1).max(65535),
  endpoints: z.array(Endpoint),
  /**
   * The hub's signing key, pinned at enrollment (the join token carried its fingerprint): every
   * roster answer must be signed with it. Absent only in state written before answers were signed.
   */
  coordinatorKey: IdentityKey.optional(),
  /** The mesh backend that brought the tunnel up (apps/mesh/src/backends); absent: linux, as before backends. */
  backend: z.enum(["linux", "darwin", "windows", "external"]).optional(),
  /**
   * The OS's own name for the tunnel, when it is not `interfaceName`: macOS's utunN, chosen by the
   * kernel and read back from wireguard-go's WG_TUN_NAME_FILE. Kept for diagnostics and `wg show`.
   */
  device: z.string().min(1).max(15).optional(),
  /**
   * The hub's potluck0 address, saved once this machine's tunnel is up and the roster names a hub:
   * from then on the roster and NATS are reached there, inside WireGuard, and `coordinatorUrl`
   * (the LAN address) serves only to enroll. Absent: no hub on the mesh, the LAN address stays.
   */
  hubMeshIp: MeshIp.optional(),
});
export type MeshState = z.infer<typeof MeshState>;

/**
 * GET /v1/roster/version: what pollers check before fetching the whole roster (bumped on membership and key changes).
 */
export const RosterVersion = z.object({ version: z.number().int().nonnegative() });
export type RosterVersion = z.infer<typeof RosterVersion>;
