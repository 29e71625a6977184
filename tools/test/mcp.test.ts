import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { serveApp, type ServedApp } from "@potluck/service";
import { loadSidecarConfig, startSidecarService, type SidecarService } from "@potluck/sidecar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveMcpHttp } from "../src/mcp/http.js";
import { buildMcpServer } from "../src/mcp/server.js";
import { sidecarTarget } from "../src/mcp/sidecar.js";
import { repoRoot } from "../src/lib/repo.js";
import { potluck } from "./helpers/bin.js";

// `potluck mcp` as an agent's MCP client uses it: the SDK's own Client over stdio (spawning the real
// CLI) and over streamable HTTP (the real CLI with --http), against a real sidecar (the same
// startSidecarService as main.ts) serving the generated tiny model and its own memory store.
const machine = "mcp-box";
const potluckBin = join(repoRoot, "bin/potluck.mjs");
const dataDir = mkdtempSync(join(tmpdir(), "potluck-mcp-"));
let sidecar: SidecarService;
let served: ServedApp;
let sidecarPort = 0;
let tinyModel = "";
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  // The sidecar's own port must be the one it serves on: doctor's local layer probes it there.
  sidecarPort = await freePort();
  const config = loadSidecarConfig(
    {
      POTLUCK_MACHINE: machine,
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_BIND: "127.0.0.1",
      POTLUCK_PORT: String(sidecarPort),
      POTLUCK_CPU_PIN: "off",
      POTLUCK_THREADS: "1",
    },
    [],
  );
  sidecar = await startSidecarService(config, { nats: null, version: "test" });
  served = await serveApp(sidecar.app, { port: sidecarPort, hostname: "127.0.0.1" });
  await sidecar.warm;
  tinyModel = sidecar.models[0]?.id ?? "";
  expect(tinyModel).toMatch(/^potluck-tiny-test-model/);
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  await served?.close();
  await sidecar?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

/** `potluck mcp` over stdio, as Claude Desktop starts it: only the client's default environment and the port. */
async function stdioClient(): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [potluckBin, "mcp"],
    cwd: repoRoot,
    env: { ...getDefaultEnvironment(), POTLUCK_PORT: String(sidecarPort) },
    stderr: "pipe",
  });
  const client = new Client({ name: "mcp-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

/** `potluck mcp --http --port 0`; the port it bound is read from its listening line. */
async function startHttpServer(): Promise<string> {
  const child = spawn(process.execPath, [potluckBin, "mcp", "--http", "--port", "0"], {
    cwd: repoRoot,
    env: { ...process.env, POTLUCK_PORT: String(sidecarPort) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`potluck mcp --http did not start: ${output}`)), 90_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(output)?.[1];
      if (url !== undefined) {
        clearTimeout(timer);
        resolve(url);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`potluck mcp --http exited ${code}: ${output}`)));
  });
}

let httpUrl = "";
const clients: Record<string, () => Promise<Client>> = {
  stdio: stdioClient,
  http: async () => {
    httpUrl ||= await startHttpServer();
    const client = new Client({ name: "mcp-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(httpUrl)));
    return client;
  },
};

describe.each(Object.keys(clients))("potluck mcp over %s", (transport) => {
  let client: Client;
  beforeAll(async () => {
    client = await clients[transport]!();
  });
  afterAll(async () => {
    await client?.close();
  });

  it("lists the five tools, each with a description and a bounded input schema", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["ask", "doctor", "memory_add", "memory_search", "models"]);
    for (const tool of tools) expect(tool.description?.length ?? 0).toBeGreaterThan(40);
    const ask = tools.find((t) => t.name === "ask")!;
    expect(ask.inputSchema.required).toEqual(["model", "prompt"]);
    expect((ask.inputSchema.properties?.prompt as { maxLength?: number }).maxLength).toBe(64_000);
    const search = tools.find((t) => t.name === "memory_search")!;
    expect((search.inputSchema.properties?.scope as { enum?: string[] }).enum).toEqual(["local", "fleet"]);
  });

  it("models lists the tiny test model in the state the sidecar has it", async () => {
    // Models load on first use: before any ask it is available, after one ready.
    const state = sidecar.engine.state(tinyModel)?.state;
    expect(["available", "ready"]).toContain(state);
    const result = await call(client, "models", {});
    expect(result.isError).toBeFalsy();
    expect(text(result)).toContain(`${tinyModel}  ${state}  (TEST MODEL`);
    expect(result.structuredContent).toEqual({ models: [{ id: tinyModel, state, test_model: true }] });
  });

  it("ask runs the prompt and names the machine that served it", async () => {
    const result = await call(client, "ask", { model: tinyModel, prompt: "Say hello.", max_tokens: 8 });
    expect(result.isError, text(result)).toBeFalsy();
    const data = result.structuredContent as Record<string, unknown>;
    expect(data).toMatchObject({ served_by: machine, route: "local", test_model: true, model: tinyModel });
    expect(data.completion_tokens).toBeGreaterThan(0);
    expect(data.completion_tokens).toBeLessThanOrEqual(8);
    expect(text(result)).toContain(`— served by ${machine} (route: local)`);
    expect(text(result).startsWith(String(data.reply))).toBe(true);
  });

  it("ask on a machine the household does not have is an error result with the sidecar's reason", async () => {
    const result = await call(client, "ask", { model: tinyModel, prompt: "hi", machine: "no-such-box", max_tokens: 4 });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/^the sidecar refused POST \/v1\/chat\/completions: .*no-such-box/);
  });

  it("memory_add stores a note that memory_search then finds", async () => {
    const marker = `${transport}-${randomBytes(4).toString("hex")}`;
    const note = `the spare router password is kept in the blue folder ${marker}`;
    const added = await call(client, "memory_add", { text: note, project: "house", tags: ["router"] });
    expect(added.isError, text(added)).toBeFalsy();
    const id = (added.structuredContent as { id: string }).id;
    expect(text(added)).toBe(`remembered in project house as ${id}`);
    const found = await call(client, "memory_search", { query: `blue folder ${marker}`, project: "house" });
    expect(found.isError, text(found)).toBeFalsy();
    const hits = (found.structuredContent as { hits: Array<{ id: string; text: string; machine: string }> }).hits;
    expect(hits[0]).toMatchObject({ id, text: note, machine });
    expect(text(found)).toContain(note);
  });

  it("memory_search with scope fleet answers from this machine and says how each machine answered", async () => {
    const found = await call(client, "memory_search", { query: "router password", scope: "fleet" });
    expect(found.isError, text(found)).toBeFalsy();
    const data = found.structuredContent as { hits: unknown[]; machines: Array<{ machine: string; status: string }> };
    expect(data.hits.length).toBeGreaterThan(0);
    expect(data.machines).toContainEqual(expect.objectContaining({ machine, status: "answered" }));
  });

  it("doctor diagnoses this machine's path to its model", async () => {
    const result = await call(client, "doctor", { machine, model: tinyModel });
    expect(result.isError, text(result)).toBeFalsy();
    const data = result.structuredContent as { usable: boolean; reports: Array<{ from: string; layers: unknown[] }> };
    expect(data.reports).toHaveLength(1);
    expect(data.reports[0]?.from).toBe(machine);
    expect(data.reports[0]?.layers.length).toBeGreaterThan(0);
    expect(text(result)).toContain(`${machine} (this machine)`);
    expect(data.usable, text(result)).toBe(true);
  });

  it("a bad argument is an error result naming the field, and the server keeps serving", async () => {
    const tooLong = await call(client, "ask", { model: tinyModel, prompt: "x".repeat(64_001) });
    expect(tooLong.isError).toBe(true);
    expect(text(tooLong)).toMatch(/Invalid arguments for tool ask:.*at prompt/s);
    const misspelt = await call(client, "memory_search", { qurey: "router" });
    expect(misspelt.isError).toBe(true);
    expect(text(misspelt)).toMatch(/query/);
    expect(text(misspelt)).toMatch(/qurey/);
    const badScope = await call(client, "memory_search", { query: "router", scope: "everywhere" });
    expect(text(badScope)).toMatch(/at scope/);
    expect((await call(client, "models", {})).isError).toBeFalsy();
  });
});

describe("potluck mcp --http on loopback", () => {
  function raw(headers: Record<string, string>, method = "POST"): Promise<{ status: number; body: string }> {
    const url = new URL(httpUrl);
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: url.port, path: url.pathname, method, headers }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end(method === "POST" ? JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }) : undefined);
    });
  }
  const json = { "content-type": "application/json", accept: "application/json, text/event-stream" };

  it("refuses a request sent under a non-loopback Host or from a web page's Origin", async () => {
    httpUrl ||= await startHttpServer();
    const ok = await raw({ ...json, host: new URL(httpUrl).host });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('"name":"ask"');
    const rebound = await raw({ ...json, host: `attacker.example:${new URL(httpUrl).port}` });
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body)).toMatchObject({ error: { code: "forbidden", field: "host" } });
    const page = await raw({ ...json, host: new URL(httpUrl).host, origin: "https://attacker.example" });
    expect(page.status).toBe(403);
    expect(JSON.parse(page.body)).toMatchObject({ error: { code: "forbidden", field: "origin" } });
  });

  it("is stateless: no server-initiated stream to GET, no session to DELETE", async () => {
    httpUrl ||= await startHttpServer();
    for (const method of ["GET", "DELETE"]) {
      const answer = await raw({ accept: "text/event-stream" }, method);
      expect(answer.status, method).toBe(405);
      expect(JSON.parse(answer.body).error.message).toContain("stateless");
    }
  });
});

describe("potluck mcp's flags", () => {
  it("refuses a misspelt flag, naming it (exit 2), and --port without --http", async () => {
    const misspelt = await potluck("mcp", "--htp");
    expect(misspelt.code).toBe(2);
    expect(misspelt.stderr).toContain("unknown flag --htp (did you mean --http?)");
    const portOnly = await potluck("mcp", "--port", "9000");
    expect(portOnly.code).toBe(2);
    expect(portOnly.stderr).toContain("--port is the HTTP port; add --http");
  });
});

describe("the MCP server when the sidecar is down", () => {
  it("answers each tool with an error result (or doctor's diagnosis) instead of failing", async () => {
    const dead = await freePort();
    const server = buildMcpServer(sidecarTarget(undefined, { POTLUCK_PORT: String(dead) }), "test");
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: "mcp-test", version: "1.0.0" });
    await client.connect(clientSide);
    try {
      const ask = await call(client, "ask", { model: "m", prompt: "hi" });
      expect(ask.isError).toBe(true);
      expect(text(ask)).toContain(`no sidecar answers at http://127.0.0.1:${dead}`);
      const models = await call(client, "models", {});
      expect(models.isError).toBe(true);
      expect(text(models)).toContain("start it with potluck up");
      // Doctor's own client names the local sidecar as the failing layer, as `potluck doctor` does.
      const doctor = await call(client, "doctor", { machine });
      expect(doctor.isError).toBeFalsy();
      expect(doctor.structuredContent).toMatchObject({ usable: false, reports: [{ firstFailure: "local-sidecar" }] });
      expect(text(doctor)).toContain(`→ ${machine}: cannot serve a prompt: local-sidecar failed`);
      expect(text(doctor)).toContain(`sidecar port ${dead}`);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe("the HTTP transport's bound on requests in flight", () => {
  it("answers 503 past the bound, before any work, and serves again once one finishes", async () => {
    let entered = 0;
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    // A server whose one tool waits: the transport and guard are the real ones, only the tool is the test's.
    const build = () => {
      const server = new McpServer({ name: "hold", version: "1" });
      server.registerTool("hold", { description: "waits" }, async () => {
        entered += 1;
        await held;
        return { content: [{ type: "text", text: "released" }] };
      });
      return server;
    };
    const served = await serveMcpHttp(build, 0, 2);
    const post = () =>
      fetch(`http://127.0.0.1:${served.port}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "hold", arguments: {} } }),
      });
    try {
      const first = [post(), post()];
      for (let i = 0; i < 100 && entered < 2; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(entered).toBe(2);
      const refused = await post();
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain("already handling 2");
      expect(entered).toBe(2);
      release();
      for (const res of await Promise.all(first)) expect(await res.text()).toContain("released");
      expect((await post()).status).toBe(200);
    } finally {
      release();
      await served.close();
    }
  });
});
