/**
 * Whether this machine's own peers may search its memory. It starts from
 * POTLUCK_PEER_MEMORY_ENABLED and `potluck memory share on|off` (PUT /memory/peer-search) changes
 * it in the running sidecar; like the variable, a change lasts until the next restart. The
 * routes and the capabilities report read it on every request, so a change needs no restart.
 */
export interface PeerSharing {
  enabled(): boolean;
  set(enabled: boolean): void;
}

export function peerSharing(initial: boolean): PeerSharing {
  let enabled = initial;
  return {
    enabled: () => enabled,
    set: (next) => {
      enabled = next;
    },
  };
}
