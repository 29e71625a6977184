import { z } from "zod";

/** A machine name as it appears in the roster, NATS subjects and DNS-like labels. */
export const MachineName = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    "expected a lower-case name of letters, digits and '-', 1-63 characters",
  );
export type MachineName = z.infer<typeof MachineName>;

/**
 * A host name made into a roster label: host names are often upper-case or dotted, and the roster
 * wants one lower-case label ("machine" when nothing usable is left).
 */
export function machineNameFromHost(host: string): MachineName {
  const label =
    (host.split(".")[0] ?? "")
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 63)
      .replace(/-+$/, "") || "machine";
  return MachineName.safeParse(label).success ? label : "machine";
}

/** An owner (household or person) name; the unit credits are accounted to. */
export const OwnerName = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/,
    "expected a lower-case name of letters, digits, '_' and '-', 1-63 characters",
  );
export type OwnerName = z.infer<typeof OwnerName>;

/** 32 raw bytes in standard base64: WireGuard and Ed25519 public keys both look like this. */
const key32Base64 = z
  .string()
  .regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, "expected a 32-byte key in base64 (44 characters)");
export const WireguardKey = key32Base64.brand<"WireguardKey">();
export type WireguardKey = z.infer<typeof WireguardKey>;
export const IdentityKey = key32Base64.brand<"IdentityKey">();
export type IdentityKey = z.infer<typeof IdentityKey>;

/** An IPv4 address inside the mesh range 100.64.0.0/10. */
export const MeshIp = z.ipv4().refine(isMeshIp, "expected an address in 100.64.0.0/10");
export type MeshIp = z.infer<typeof MeshIp>;

export function isMeshIp(ip: string): boolean {
  const parts = ip.split(".").map(Number);
  return parts.length === 4 && parts[0] === 100 && (parts[1] ?? 0) >= 64 && (parts[1] ?? 0) <= 127;
}

/** host:port of a WireGuard underlay endpoint. */
export const Endpoint = z
  .string()
  .max(261)
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "expected host:port");

export const IsoTime = z.iso.datetime({ offset: true });

/** Identifiers chosen by callers (event ids, job ids): bounded, printable, no spaces. */
export const ClientId = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, "expected 1-128 characters of letters, digits, '.', '_', ':' or '-'");
