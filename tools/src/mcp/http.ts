import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { errorBody, ErrorCode } from "@potluck/protocol";
import { loopbackGuard, nodeRemoteAddress, serveApp, type ServedApp } from "@potluck/service";
import { Hono } from "hono";
import { mcpPath } from "./defaults.js";

/**
 * Largest JSON-RPC body read, checked by the transport before parsing: the biggest valid call (a
 * 64,000-character prompt, escaped) is well under it.
 */
const requestBytesMax = 1024 * 1024;
/**
 * Requests handled at once; more get a 503 before any work. Each holds a server and, for ask, a
 * sidecar request that waits in the sidecar's own bounded queue; an agent sends a handful.
 */
export const inFlightMaxDefault = 32;

/**
 * MCP's streamable HTTP transport on 127.0.0.1, stateless: each POST gets a fresh server and
 * transport and a plain JSON answer. Every tool is one request to the sidecar and the server sends
 * nothing unprompted, so sessions would only add a table to bound and expire; without them a client
 * or server restart needs no re-initialisation. The sidecar's loopback guard stands in front: a
 * peer off this machine, a foreign Host (DNS rebinding) or a foreign Origin (a web page) gets a 403.
 */
export function mcpHttpApp(build: () => McpServer, inFlightMax = inFlightMaxDefault): Hono {
  const app = new Hono();
  let inFlight = 0;
  app.use("*", loopbackGuard({ remoteAddress: nodeRemoteAddress, what: "potluck's MCP server" }));
  app.post(mcpPath, async (c, next) => {
    if (inFlight >= inFlightMax)
      return c.json(
        jsonRpcError(`potluck's MCP server is already handling ${inFlightMax} requests; retry when one finishes`),
        503,
        { "retry-after": "1" },
      );
    inFlight += 1;
    try {
      await next();
    } finally {
      inFlight -= 1;
    }
  });
  app.post(mcpPath, async (c) => {
    const server = build();
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      maxRequestBodySize: requestBytesMax,
    });
    await server.connect(transport);
    try {
      return await transport.handleRequest(c.req.raw);
    } finally {
      // A JSON answer is complete when handleRequest returns, so closing cannot cut it short.
      await server.close();
    }
  });
  // No server-initiated stream (GET) and no session to end (DELETE): 405, which the spec and the
  // SDK's client take as "this server does not offer that".
  app.on(["GET", "DELETE"], mcpPath, (c) =>
    c.json(
      jsonRpcError(`${c.req.method} ${mcpPath}: this server is stateless and sends nothing unprompted; POST requests`),
      405,
      { allow: "POST" },
    ),
  );
  // A fault of this server (not a tool's: those are tool results) still answers in JSON-RPC's shape.
  app.onError((error, c) => c.json(jsonRpcError(`potluck's MCP server failed: ${error.message}`), 500));
  app.notFound((c) =>
    c.json(errorBody(ErrorCode.notFound, `${c.req.path}: potluck's MCP endpoint is ${mcpPath}`, "path"), 404),
  );
  return app;
}

export function serveMcpHttp(
  build: () => McpServer,
  port: number,
  inFlightMax = inFlightMaxDefault,
): Promise<ServedApp> {
  return serveApp(mcpHttpApp(build, inFlightMax), { port, hostname: "127.0.0.1", name: "potluck mcp" });
}

function jsonRpcError(message: string) {
  return { jsonrpc: "2.0", error: { code: -32000, message }, id: null };
}
