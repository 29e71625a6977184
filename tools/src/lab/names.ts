import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Every lab namespace is `pl-<id>-<host>`; cleanup recognises lab names by this shape only. */
export const netnsPattern = /^pl-([a-z0-9]{4,8})-([a-z][a-z0-9]{0,14})$/;
const idPattern = /^[a-z0-9]{4,8}$/;
const hostPattern = /^[a-z][a-z0-9]{0,14}$/;

/** Name of the namespace holding the home-LAN bridge; "lan" is therefore not a valid host name. */
export const lanHostName = "lan";
/** The home-LAN link inside every host. */
export const underlayDev = "eth0";
export const meshDev = "potluck0";
export const meshMtu = 1280;
export const wgListenPort = 51820;
/** Short enough that a peer coming back handshakes within seconds; real clients use 25 s. */
export const keepaliveS = 5;

export function newLabId(): string {
  return randomBytes(3).toString("hex");
}

export function checkId(id: string): string {
  if (!idPattern.test(id)) throw new Error(`lab id "${id}" must be 4–8 lowercase letters or digits`);
  return id;
}

export function checkHostNames(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (!hostPattern.test(name) || name === lanHostName) {
      throw new Error(
        `lab host name "${name}" must be 1–15 lowercase letters/digits starting with a letter, not "${lanHostName}"`,
      );
    }
    if (seen.has(name)) throw new Error(`lab host name "${name}" is given twice`);
    seen.add(name);
  }
  // Underlay and mesh addresses are .2 … .254 of one /24.
  if (names.length > 250) throw new Error(`a lab has at most 250 hosts (got ${names.length})`);
}

export const netnsName = (id: string, host: string) => `pl-${id}-${host}`;
export const bridgeName = (id: string) => `plb-${id}`;
/** The bridge-side end of host i's veth, inside the LAN namespace. */
export const lanPortName = (id: string, index: number) => `pl${id}p${index}`;

/** 198.18.0.0/15 is reserved for benchmarks (RFC 2544): nothing real lives there, and no route leaves the lab. */
export function underlaySubnet(id: string): number {
  return Number.parseInt(id.slice(0, 2), 36) % 256;
}
export const underlayIp = (subnet: number, index: number) => `198.18.${subnet}.${index + 2}`;
export const meshIp = (index: number) => `100.64.0.${index + 2}`;

/** Where lab state, run dirs and WireGuard sockets live; the CLI and tests agree on it. */
export function labRootDir(): string {
  return process.env.POTLUCK_LAB_DIR ?? join(tmpdir(), "potluck-lab");
}
export const labDir = (id: string) => join(labRootDir(), id);
export const stateFile = (id: string) => join(labDir(id), "lab.json");
/** Env var every lab process carries, so cleanup finds strays even after their namespace is gone. */
export const labIdEnv = "POTLUCK_LAB_ID";
