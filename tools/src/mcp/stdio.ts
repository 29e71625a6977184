import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";

/** Bytes of one unfinished stdio message held before the transport gives up on the stream. */
const stdioBufferBytesMax = 4 * 1024 * 1024;

/**
 * Serves one MCP client on this process's stdin/stdout until it closes its end (or `stopped`
 * resolves). stdout carries only the protocol; anything for a person goes to stderr.
 */
export async function serveStdio(server: McpServer, stopped: Promise<void>): Promise<void> {
  const transport = new StdioServerTransport(process.stdin, process.stdout, { maxBufferSize: stdioBufferBytesMax });
  await server.connect(transport);
  const closed = new Promise<void>((resolve) => {
    // The transport closes itself on a message over the buffer bound; a client ends by closing our stdin.
    server.server.onclose = resolve;
    process.stdin.once("end", resolve);
  });
  await Promise.race([closed, stopped]);
  await server.close();
}
