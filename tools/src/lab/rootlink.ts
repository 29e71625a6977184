import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { labRootDir } from "./names.js";
import { runOk } from "./run.js";

/**
 * The optional root link: a veth from this (root) namespace onto the lab's home LAN, so a test
 * can run a service in its own process (e.g. a coordinator on port 0) that every host reaches at
 * 198.18.n.1. The root namespace routes the lab's /24 to it, so two root-linked labs must not share
 * a subnet: claims are files created exclusively under the lab dir's parent.
 */
const claimsDir = () => join(labRootDir(), "subnets");
export const rootLinkName = (id: string) => `pl${id}r`;
const rootLinkPattern = /^pl([a-z0-9]{4,8})r$/;
const lanSideName = (id: string) => `pl${id}g`;
export const rootIp = (subnet: number) => `198.18.${subnet}.1`;

function subnetsInUse(): Set<number> {
  const used = new Set<number>();
  try {
    const out = execFileSync("ip", ["-4", "-o", "address", "show"], { encoding: "utf8" });
    for (const match of out.matchAll(/inet 198\.18\.(\d+)\./g)) used.add(Number(match[1]));
  } catch {
    // no ip(8): the claim files alone decide
  }
  return used;
}

/** Claims a 198.18.n.0/24 no other root-linked lab uses, starting at `preferred`. */
export function claimSubnet(id: string, preferred: number): number {
  mkdirSync(claimsDir(), { recursive: true });
  const used = subnetsInUse();
  for (let i = 0; i < 256; i++) {
    const n = (preferred + i) % 256;
    if (used.has(n)) continue;
    try {
      writeFileSync(join(claimsDir(), String(n)), id, { flag: "wx" });
      return n;
    } catch {
      // claimed by another lab
    }
  }
  throw new Error("no free 198.18.n.0/24 for a root-linked lab (256 in use)");
}

/** Drops the subnet claims of lab `id`, or (id null) of every lab `isLive` rejects. */
export function releaseSubnets(id: string | null, isLive: (owner: string) => boolean = () => true): void {
  let names: string[];
  try {
    names = readdirSync(claimsDir());
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(claimsDir(), name);
    try {
      const owner = readFileSync(path, "utf8").trim();
      if (owner === id || (id === null && !isLive(owner))) rmSync(path, { force: true });
    } catch {
      // removed meanwhile
    }
  }
}

/** Adds the root link; deleting the LAN namespace later deletes both ends with it. */
export async function addRootLink(id: string, lanNetns: string, bridge: string, subnet: number): Promise<void> {
  const script = [
    `ip link add ${rootLinkName(id)} type veth peer name ${lanSideName(id)} netns "$0"`,
    `ip -n "$0" link set ${lanSideName(id)} master ${bridge} up`,
    `ip address add ${rootIp(subnet)}/24 dev ${rootLinkName(id)}`,
    `ip link set ${rootLinkName(id)} up`,
  ].join(" && ");
  await runOk("linking the root namespace to the lab LAN", ["sh", "-c", script, lanNetns]);
}

/** Lab ids that have a root link in this namespace. */
export function rootLinkIds(): string[] {
  try {
    const out = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
    return [...out.matchAll(/^\d+: ([^:@\s]+)/gm)]
      .map((m) => rootLinkPattern.exec(m[1] ?? "")?.[1])
      .filter((id): id is string => id !== undefined);
  } catch {
    return [];
  }
}
