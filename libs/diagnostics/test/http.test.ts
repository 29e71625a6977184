import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fileRosterSource,
  httpFirewallProbe,
  httpPeerClient,
  httpSelfClient,
  parseWgDump,
  ProbeError,
} from "../src/index.js";
import { capabilities } from "./fakes.js";

/** A real HTTP server on loopback whose behaviour each test picks by path. */
let server: Server;
let port = 0;
const hung = new Set<import("node:http").ServerResponse>();
/** The client side of each probe's connection, and what it asked for the connection. */
const probeSockets: { port: number; connection: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      if (req.url === "/peer/probe") {
        const { payload } = JSON.parse(body) as { payload: string };
        probeSockets.push({ port: req.socket.remotePort ?? 0, connection: req.headers.connection ?? "" });
        // Echo small payloads; hang on large ones, as an MTU black hole does.
        if (payload.length > 100 && req.headers["x-test"] === "blackhole") return void hung.add(res);
        res.setHeader("content-type", "application/json");
        return void res.end(JSON.stringify({ machine: "linux", bytes: payload.length, payload }));
      }
      if (req.url === "/peer/capabilities") {
        if (req.headers["x-test"] === "unauthorized") {
          res.statusCode = 401;
          return void res.end(JSON.stringify({ error: { code: "unauthorized", message: "unknown key" } }));
        }
        return void res.end(JSON.stringify(capabilities([{ id: "tiny", state: "ready", testModel: true }])));
      }
      if (req.url === "/peer/infer") {
        if (req.headers["x-test"] === "loading") {
          res.statusCode = 503;
          return void res.end(JSON.stringify({ error: { code: "model_loading", message: "tiny is loading (40%)" } }));
        }
        res.write(`${JSON.stringify({ type: "token", text: "Hi" })}\n`);
        return void setTimeout(() => res.end(), 50);
      }
      if (req.url === "/status?fresh=1") return void res.end(JSON.stringify({ not: "a status" }));
      if (req.url === "/v1/models") {
        return void res.end(
          JSON.stringify({
            object: "list",
            data: [
              {
                id: "qwen",
                object: "model",
                potluck: { machine: "mac", state: "failed", reason: "CUDA missing", test_model: false },
              },
            ],
          }),
        );
      }
      if (req.url === "/v1/chat/completions") {
        const { potluck, max_tokens: maxTokens } = JSON.parse(body) as { potluck: { on: string }; max_tokens: number };
        return void res.end(
          JSON.stringify({ served_by: potluck.on, choices: [{ message: { content: "x".repeat(maxTokens) } }] }),
        );
      }
      res.statusCode = 404;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const res of hung) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const client = (test?: string) =>
  httpPeerClient({
    requester: { machine: "mac", owner: "home" },
    sign: (): Record<string, string> => (test === undefined ? {} : { "x-test": test }),
  });
const target = () => ({ name: "linux", host: "127.0.0.1", port });

/** A port that was just free: nothing listens there. */
async function closedPort(): Promise<number> {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const free = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  return free;
}

async function kindOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    expect(error).toBeInstanceOf(ProbeError);
    return (error as ProbeError).kind;
  }
}

describe("the HTTP probes against a real server", () => {
  it("echoes small and large probes", async () => {
    await client().probe(target(), 32, AbortSignal.timeout(5_000));
    await client().probe(target(), 1_400, AbortSignal.timeout(5_000));
  });

  it("small probes never share a connection with anything larger", async () => {
    probeSockets.length = 0;
    const peer = client();
    for (let i = 0; i < 3; i++) {
      await peer.probe(target(), 32, AbortSignal.timeout(5_000));
      await peer.probe(target(), 1_400, AbortSignal.timeout(5_000));
    }
    expect(probeSockets).toHaveLength(6);
    const small = new Set(probeSockets.filter((_, i) => i % 2 === 0).map((s) => s.port));
    const large = new Set(probeSockets.filter((_, i) => i % 2 === 1).map((s) => s.port));
    for (const port of small) expect(large.has(port)).toBe(false);
    // Kept alive: three small probes in a row reuse one connection rather than paying a handshake each.
    expect(small.size).toBe(1);
    for (const socket of probeSockets) expect(socket.connection).toBe("keep-alive");
  });

  it("a small probe answers while a large one on the same client hangs", async () => {
    const peer = client("blackhole");
    const large = kindOf(peer.probe(target(), 1_400, AbortSignal.timeout(3_000)));
    await peer.probe(target(), 32, AbortSignal.timeout(2_000));
    expect(await large).toBe("timeout");
  });

  it("a closed port is refused", async () => {
    expect(
      await kindOf(
        client().probe({ name: "linux", host: "127.0.0.1", port: await closedPort() }, 32, AbortSignal.timeout(5_000)),
      ),
    ).toBe("refused");
  });

  it("an answer that never comes is a timeout", async () => {
    expect(await kindOf(client("blackhole").probe(target(), 1_400, AbortSignal.timeout(300)))).toBe("timeout");
  });

  it("HTTP errors keep their status and code", async () => {
    const error = await client("unauthorized")
      .capabilities(target(), AbortSignal.timeout(5_000))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: "http", http: { status: 401, code: "unauthorized" } });
    const loading = await client("loading")
      .firstToken(target(), "tiny", AbortSignal.timeout(5_000))
      .catch((e: unknown) => e);
    expect(loading).toMatchObject({ kind: "http", http: { status: 503 } });
  });

  it("reads capabilities and the first token", async () => {
    expect((await client().capabilities(target(), AbortSignal.timeout(5_000))).models[0]?.id).toBe("tiny");
    expect(await client().firstToken(target(), "tiny", AbortSignal.timeout(5_000))).toEqual({
      text: "Hi",
      servedBy: "linux",
    });
  });

  it("the fw-watcher probe: nothing listening is no watcher; a wrong body is an error", async () => {
    const closed = httpFirewallProbe({ url: `http://127.0.0.1:${await closedPort()}` });
    expect(await closed.status(AbortSignal.timeout(5_000))).toBeNull();
    const wrong = httpFirewallProbe({ url: `http://127.0.0.1:${port}` });
    expect(await kindOf(wrong.status(AbortSignal.timeout(5_000)))).toBe("invalid");
  });
});

describe("the local model path through the OpenAI API", () => {
  it("reads model state with the runtime's reason, and asks this machine for one token", async () => {
    const self = httpSelfClient({ url: `http://127.0.0.1:${port}`, machine: "mac" });
    expect(await self.models(AbortSignal.timeout(5_000))).toEqual([
      { id: "qwen", state: "failed", reason: "CUDA missing", testModel: false },
    ]);
    expect(await self.firstToken("qwen", AbortSignal.timeout(5_000))).toEqual({ text: "x", servedBy: "mac" });
  });
});

describe("the roster through libs/peer's one roster source", () => {
  it("lists machines and looks one up by name; an unknown name is absent, not an error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "potluck-diag-roster-"));
    try {
      const key = "A".repeat(43) + "=";
      const machine = (name: string) => ({
        id: `id-${name}`,
        name,
        owner: "home",
        meshIp: "100.64.0.3",
        wireguardPublicKey: key,
        identityPublicKey: key,
        endpoints: [],
        state: "online",
        lastHeartbeatAt: null,
        staleKey: false,
      });
      writeFileSync(
        join(dir, "roster.json"),
        JSON.stringify({ version: 1, machines: [machine("mac"), machine("linux")] }),
      );
      const roster = fileRosterSource(join(dir, "roster.json"));
      expect((await roster.list(AbortSignal.timeout(5_000))).map((m) => m.name)).toEqual(["mac", "linux"]);
      expect((await roster.lookup("linux", AbortSignal.timeout(5_000)))?.meshIp).toBe("100.64.0.3");
      expect(await roster.lookup("windows", AbortSignal.timeout(5_000))).toBeNull();
      // A lookup by id is the directory's business; diagnostics names machines only.
      expect(await roster.lookup("id-linux", AbortSignal.timeout(5_000))).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a roster that cannot be read fails the lookup", async () => {
    await expect(
      fileRosterSource("/nonexistent/roster.json").lookup("linux", AbortSignal.timeout(5_000)),
    ).rejects.toThrow(/reading roster/);
  });
});

describe("wg show dump", () => {
  it("parses peers, endpoints and handshakes", () => {
    const dump = [
      "cHJpdmF0ZQ==\tcHVibGlj\t51820\toff",
      "bGludXg=\t(none)\t198.18.7.3:51820\t100.64.0.3/32\t1781470000\t1200\t3400\t25",
      "d2luZG93cw==\t(none)\t(none)\t100.64.0.4/32,fd00::4/128\t0\t0\t0\toff",
    ].join("\n");
    expect(parseWgDump(dump)).toEqual([
      {
        publicKey: "bGludXg=",
        endpoint: "198.18.7.3:51820",
        allowedIps: ["100.64.0.3/32"],
        latestHandshakeAtMs: 1_781_470_000_000,
        rxBytes: 1200,
        txBytes: 3400,
      },
      {
        publicKey: "d2luZG93cw==",
        endpoint: null,
        allowedIps: ["100.64.0.4/32", "fd00::4/128"],
        latestHandshakeAtMs: null,
        rxBytes: 0,
        txBytes: 0,
      },
    ]);
    expect(() => parseWgDump("iface\nbroken line")).toThrow(/8 fields/);
  });
});
