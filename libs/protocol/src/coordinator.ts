import { z } from "zod";
import { Endpoint, IdentityKey, IsoTime, MachineName, MeshIp, OwnerName, WireguardKey } from "./common.js";

export const TokenCreateRequest = z.object({
  reusable: z.boolean().default(false),
  /** Seconds until the token expires; an hour by default, a week at most. */
  ttlS: z.number().int().min(60).max(7 * 24 * 3600).default(3600),
  owner: OwnerName.optional(),
});
export type TokenCreateRequest = z.infer<typeof TokenCreateRequest>;

export const TokenCreated = z.object({ token: z.string(), expiresAt: IsoTime, reusable: z.boolean() });
export type TokenCreated = z.infer<typeof TokenCreated>;

export const EnrollRequest = z.object({
  token: z.string().min(16).max(256),
  name: MachineName,
  owner: OwnerName,
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

export const Roster = z.object({ version: z.number().int().nonnegative(), machines: z.array(RosterEntry) });
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
