import type { RosterEntry } from "@potluck/protocol";

/** A WireGuard-shaped key made of one character: distinct per machine, readable in plans. */
export const fakeKey = (c: string): string => `${c.repeat(43)}=`;

/** A roster entry for the plan tests: machine `n` has mesh address 100.64.0.n and key letter n. */
export const rosterEntry = (name: string, n: number, endpoints: string[]): RosterEntry =>
  ({
    id: `id-${name}`,
    name,
    owner: "home",
    meshIp: `100.64.0.${n}`,
    wireguardPublicKey: fakeKey(String.fromCharCode(96 + n)),
    identityPublicKey: fakeKey("z"),
    endpoints,
    state: "online",
    lastHeartbeatAt: null,
    staleKey: false,
  }) as RosterEntry;
