import { BlockList, connect, isIP } from "node:net";
import { networkInterfaces } from "node:os";
import type { UnderlayProbe } from "./probes.js";

/**
 * The real underlay probe: one TCP connection attempt to the peer's endpoint address, on-link only.
 * Accepted or refused both mean the host's kernel is up and answering; a silent drop proves nothing.
 * `interfaces` is injectable so tests can say which networks are attached.
 */
export function tcpUnderlayProbe({
  interfaces = networkInterfaces,
}: { interfaces?: typeof networkInterfaces } = {}): UnderlayProbe {
  return {
    hostAnswers(ip, port, signal) {
      if (!isOnLink(ip, interfaces())) return Promise.resolve(false);
      return new Promise((resolve) => {
        let settled = false;
        const settle = (answered: boolean) => {
          if (settled) return;
          settled = true;
          socket.destroy();
          signal.removeEventListener("abort", onAbort);
          resolve(answered);
        };
        const onAbort = () => settle(false);
        const socket = connect({ host: ip, port });
        socket.once("connect", () => settle(true));
        socket.once("error", (error: NodeJS.ErrnoException) => settle(error.code === "ECONNREFUSED"));
        if (signal.aborted) settle(false);
        else signal.addEventListener("abort", onAbort, { once: true });
      });
    },
  };
}

/**
 * True when `ip` lies in a network attached to this machine (its answer then comes from the host itself, not a router).
 */
export function isOnLink(ip: string, interfaces: ReturnType<typeof networkInterfaces>): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  const attached = new BlockList();
  let any = false;
  for (const addresses of Object.values(interfaces)) {
    for (const address of addresses ?? []) {
      if (address.internal || address.cidr === null) continue;
      const [network, prefix] = address.cidr.split("/");
      if (network === undefined || prefix === undefined) continue;
      const type = address.family === "IPv6" ? "ipv6" : "ipv4";
      // A /32 (or /128) is the address alone, e.g. a mesh interface: nothing else is on that link.
      if (Number(prefix) >= (type === "ipv4" ? 32 : 128)) continue;
      attached.addSubnet(network, Number(prefix), type);
      any = true;
    }
  }
  return any && attached.check(ip, family === 6 ? "ipv6" : "ipv4");
}
