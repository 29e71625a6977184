import { CoordinatorLimits } from "@potluck/protocol";

/** 100.64.0.0, the first address of the mesh range, as an unsigned 32-bit number. */
const meshBase = ((100 << 24) >>> 0) + (64 << 16);
/** The mesh range is a /10: every machine's potluck0 address carries this prefix length. */
export const meshPrefixLength = 10;

/** Offset 1 is 100.64.0.1; offsets are what the database stores (unique, checked in range). */
export function meshIpFor(index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > CoordinatorLimits.meshAddressesMax) {
    throw new RangeError(`mesh index ${index} is outside 1..${CoordinatorLimits.meshAddressesMax}`);
  }
  const n = meshBase + index;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function meshIndexOf(ip: string): number {
  const parts = ip.split(".").map(Number);
  const n = (((parts[0] ?? 0) << 24) >>> 0) + ((parts[1] ?? 0) << 16) + ((parts[2] ?? 0) << 8) + (parts[3] ?? 0);
  return n - meshBase;
}
