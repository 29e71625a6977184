import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Defaults } from "@potluck/protocol";
import { mcpHttpPortDefault, mcpPath } from "../../mcp/defaults.js";
import { sidecarTarget } from "../../mcp/sidecar.js";
import { repoRoot } from "../../lib/repo.js";
import { CliError, type Command } from "../command.js";

const usage = `Usage: potluck mcp [--url URL]                     (stdio: an MCP client starts it)
       potluck mcp --http [--port N] [--url URL]    (streamable HTTP on 127.0.0.1)

An MCP server exposing the household to agents: tools ask (a prompt to a model on any machine),
models, memory_search (this machine or the fleet), memory_add and doctor. Each tool is a call to
this machine's sidecar (http://127.0.0.1:$POTLUCK_PORT, default ${Defaults.sidecarPort}, or --url); POTLUCK_API_KEY,
when set, is sent as the bearer token. Start the sidecar with potluck up.

  --http      serve MCP's streamable HTTP at http://127.0.0.1:PORT${mcpPath} instead of stdio;
              loopback only (other hosts, Host and Origin headers are refused), stateless
  --port N    the HTTP port (default ${mcpHttpPortDefault}; 0 picks a free one and prints it)
  --url URL   the sidecar to call instead of this machine's

Stops on Ctrl-C, SIGTERM, or (stdio) when the client closes its input.`;

export const mcpCommand: Command = {
  name: "mcp",
  summary: "serve the household to MCP clients (agents), over stdio or loopback HTTP",
  usage,
  flags: { strings: ["port", "url"], booleans: ["http"], positionals: false },
  async run(_argv, { flags }) {
    const http = flags.has("http");
    if (!http && flags.has("port"))
      throw new CliError("--port is the HTTP port; add --http, or leave --port out for stdio", 2);
    const port = Number(flags.get("port") ?? mcpHttpPortDefault);
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new CliError(`--port: expected a port number 0-65535, got "${flags.get("port")}"`, 2);
    const sidecar = sidecarTarget(flags.get("url"));
    // The SDK loads only here: every other command starts without it.
    const { buildMcpServer } = await import("../../mcp/server.js");
    const build = () => buildMcpServer(sidecar, version());
    if (!http) {
      const { serveStdio } = await import("../../mcp/stdio.js");
      process.stderr.write(`potluck mcp: serving on stdio (sidecar ${sidecar.base})\n`);
      await serveStdio(build(), stopSignal());
      return 0;
    }
    const { serveMcpHttp } = await import("../../mcp/http.js");
    const served = await serveMcpHttp(build, port).catch((error: unknown) => {
      throw new CliError(`${error instanceof Error ? error.message : String(error)}; pick another with --port`);
    });
    process.stdout.write(
      `potluck mcp: listening on http://127.0.0.1:${served.port}${mcpPath} (sidecar ${sidecar.base})\n`,
    );
    await stopSignal();
    await served.close();
    return 0;
  },
};

function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}

/** The repository's version, as `potluck --version` prints it: what MCP clients see as the server's. */
function version(): string {
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version?: string };
  return manifest.version ?? "0.0.0";
}
