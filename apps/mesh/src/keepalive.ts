/** Keeps NAT mappings open so peers behind home routers stay reachable (WireGuard's usual 25 s). */
export const persistentKeepaliveS = 25;
