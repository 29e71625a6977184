/** How a peer is reached: its own direct tunnel, or through the hub's peer (relay.ts). */
export type PathMode = "direct" | "hub";

/** A change of one peer's path, for the agent's log. */
export interface PathChange {
  name: string;
  to: PathMode;
  reason: string;
}
