import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { SidecarTarget } from "./sidecar.js";
import { registerAsk } from "./tools/ask.js";
import { registerDoctor } from "./tools/doctor.js";
import { registerMemory } from "./tools/memory.js";
import { registerModels } from "./tools/models.js";

/**
 * Arrays and object members one tool call's arguments may hold, counted by the SDK before the
 * schema runs: the largest valid call (memory_add with every tag) has under 50.
 */
const toolInputElementsMax = 256;

/** The household as MCP tools, each a call to this machine's sidecar. */
export function buildMcpServer(sidecar: SidecarTarget, version: string): McpServer {
  const server = new McpServer(
    { name: "potluck", title: "Potluck", version },
    {
      maxToolInputElements: toolInputElementsMax,
      instructions:
        "Potluck runs models on the user's own machines. Call models to see what is here, ask to run a prompt " +
        "(on a named machine if the user wants), memory_add and memory_search to keep and find notes, and doctor " +
        "when a machine or model cannot be reached.",
    },
  );
  registerAsk(server, sidecar);
  registerModels(server, sidecar);
  registerMemory(server, sidecar);
  registerDoctor(server, sidecar);
  return server;
}
