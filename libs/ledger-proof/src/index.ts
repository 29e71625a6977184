/**
 * The ledger's offline proof toolkit: pure code on node:crypto, usable without a database (the CLI and the ledger
 * import it).
 */
export * from "./bundle.js";
export * from "./checkpoint.js";
export * from "./entry.js";
export * from "./merkle.js";
export * from "./merkle-build.js";
export * from "./note.js";
