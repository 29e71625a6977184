import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Runner } from "./exec.js";

/**
 * This machine's underlay address as the coordinator sees it: the source address the kernel
 * picks to reach the coordinator. On a home LAN that is the LAN address the other machines can
 * reach too; behind NAT the user passes --endpoint instead.
 */
export async function detectEndpointHost(run: Runner, coordinatorUrl: string): Promise<string | null> {
  const host = new URL(coordinatorUrl).hostname.replace(/^\[|\]$/g, "");
  let address = host;
  if (isIP(host) === 0) {
    try {
      address = (await lookup(host, { family: 4 })).address;
    } catch {
      return null;
    }
  }
  if (address.startsWith("127.")) return null; // the coordinator is on this machine: no underlay address learned
  const result = await run(["ip", "-4", "route", "get", address]);
  return result.code === 0 ? (/\bsrc\s+(\S+)/.exec(result.stdout)?.[1] ?? null) : null;
}
