// The memory module's public surface: the sidecar's app.ts/main.ts and tools (CLI, benches) use this.
export type { Embedder } from "./embedder.js";
export { createLexicalEmbedder, lexicalVector } from "./lexical-embedder.js";
export { createLlamaEmbedder } from "./llama-embedder.js";
export { MemoryStore, StoreDefaults, type MemoryStoreOptions, type SearchFilters, type ScoredRecord } from "./store.js";
export {
  fleetSearch,
  httpPeerSearcher,
  mergeByScore,
  staticRoster,
  type FleetPeer,
  type FleetRoster,
  type PeerOutcome,
  type PeerSearcher,
} from "./fleet.js";
export {
  memoryRoutes,
  memoryStatus,
  peerMemoryRoutes,
  peerSearchDisabledReason,
  type MemoryRouteDeps,
  type PeerMemoryRouteDeps,
} from "./routes.js";
export { openMemory, type OpenedMemory, type OpenMemoryOptions } from "./open.js";
export { peerSharing, sharesFileName, type PeerSharing } from "./sharing.js";
export { LruCache } from "./query-cache.js";
