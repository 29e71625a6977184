// Kept apart from the server so `potluck --help` (which loads every command) does not load the MCP SDK.

/** Where `potluck mcp --http` listens unless told otherwise: next to the sidecar's 8321-8323. */
export const mcpHttpPortDefault = 8324;
export const mcpPath = "/mcp";
