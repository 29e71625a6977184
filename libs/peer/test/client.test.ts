import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PeerCallError,
  PeerClient,
  ProbeSizes,
  ReplayCache,
  generateIdentity,
  privateKeyFromPem,
  signRequest,
  verifyRequest,
  type VerifyResult,
} from "../src/index.js";

// The client against a real node:http server that checks every signature the way a sidecar does.
const mac = generateIdentity();
const macKey = privateKeyFromPem(mac.privateKeyPem);
const sign = (request: { method: string; path: string; body: string; target: string }) =>
  signRequest(request, { machine: "mac", privateKey: macKey });
const replay = new ReplayCache();
const verified: VerifyResult[] = [];
const probeBytes: number[] = [];
const hung = new Set<ServerResponse>();
let server: Server;
let url = "";

beforeAll(async () => {
  server = createServer((req, res) => void answer(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of hung) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const parts: Buffer[] = [];
  for await (const part of req as AsyncIterable<Buffer>) parts.push(part);
  const body = Buffer.concat(parts);
  const path = req.url ?? "/";
  if (path === "/reset") return void req.socket.resetAndDestroy();
  if (path === "/hang") return void hung.add(res);
  const result = await verifyRequest(
    {
      method: req.method ?? "GET",
      path,
      body,
      headers: (name) => req.headers[name.toLowerCase()] as string | undefined,
    },
    { target: "linux", lookupKey: (machine) => (machine === "mac" ? mac.publicKey : undefined), replay },
  );
  verified.push(result);
  if (!result.ok)
    return void res
      .writeHead(401, { "content-type": "application/json" })
      .end(JSON.stringify({ error: { code: result.failure, message: result.message } }));
  if (path === "/peer/probe") {
    const { payload } = JSON.parse(body.toString()) as { payload: string };
    probeBytes.push(payload.length);
    return void res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ machine: "linux", bytes: payload.length, payload }));
  }
  if (path === "/peer/infer") {
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.write(`${JSON.stringify({ type: "token", text: "Hi" })}\n`);
    const done = {
      type: "done",
      servedBy: "linux",
      testModel: true,
      finishReason: "stop",
      usage: { promptTokens: 3, completionTokens: 1 },
      at: new Date().toISOString(),
    };
    return void res.end(`${JSON.stringify(done)}\n`);
  }
  if (path === "/peer/memory/search")
    return void res
      .writeHead(503, { "content-type": "application/json" })
      .end(JSON.stringify({ error: { code: "peer_search_disabled", message: "not opted in" } }));
  res.writeHead(404).end();
}

const peer = () => ({ machine: "linux", url });
/** A peer whose every call lands on `path` of the test server (the client's own path becomes a fragment). */
const misbehaving = (path: string) => ({ machine: "linux", url: `${url}${path}#` });
const request = {
  jobId: "job-1",
  model: "tiny",
  messages: [{ role: "user" as const, content: "hi" }],
  maxTokens: 1,
  temperature: 0,
  requester: { machine: "mac", owner: "home" },
};

async function closedPortUrl(): Promise<string> {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  return `http://127.0.0.1:${port}`;
}

async function failure(promise: Promise<unknown>): Promise<PeerCallError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PeerCallError);
  return error as PeerCallError;
}

describe("signed calls, verified by the receiving side", () => {
  it("probes with the large size by default and the small one on request, each signed", async () => {
    const client = new PeerClient({ sign });
    verified.length = 0;
    probeBytes.length = 0;
    await client.probe(peer());
    await client.probe(peer(), { bytes: ProbeSizes.smallBytes });
    expect(probeBytes).toEqual([ProbeSizes.largeBytes, ProbeSizes.smallBytes]);
    expect(verified).toEqual([
      { ok: true, machine: "mac" },
      { ok: true, machine: "mac" },
    ]);
  });

  it("streams a whole reply and leaves its connection to the pool", async () => {
    const client = new PeerClient({ sign });
    const chunks = [];
    for await (const chunk of client.infer(peer(), request)) chunks.push(chunk.type);
    expect(chunks).toEqual(["token", "done"]);
    await expect.poll(() => Object.values(client.agents.stream.freeSockets).flat().length).toBe(1);
  });

  it("a request signed by an unknown key is refused with the check it failed", async () => {
    const stranger = generateIdentity();
    const client = new PeerClient({
      sign: (r) => signRequest(r, { machine: "mallory", privateKey: privateKeyFromPem(stranger.privateKeyPem) }),
    });
    const error = await failure(client.capabilities(peer()));
    expect(error).toMatchObject({ kind: "http", status: 401, code: "unknown_key", layer: "roster" });
  });

  it("an HTTP error keeps the peer's code and message", async () => {
    const error = await failure(
      new PeerClient({ sign }).memorySearch(
        peer(),
        { query: "gpu", limit: 3, minConfidence: 0, includeCold: false },
        AbortSignal.timeout(5_000),
      ),
    );
    expect(error).toMatchObject({
      kind: "http",
      status: 503,
      code: "peer_search_disabled",
      serverMessage: "not opted in",
    });
  });
});

describe("one classification of network failures", () => {
  it("nothing listening is refused", async () => {
    const error = await failure(new PeerClient({ sign }).probe({ machine: "linux", url: await closedPortUrl() }));
    expect(error).toMatchObject({ kind: "refused", layer: "data-plane" });
    expect(error.message).toMatch(/connection refused/);
  });

  it("an answer that never comes is a timeout naming the budget", async () => {
    const client = new PeerClient({ sign });
    const error = await failure(client.capabilities(misbehaving("/hang"), AbortSignal.timeout(200)));
    expect(error.kind).toBe("timeout");
    expect(error.message).toMatch(/no answer in time/);
  });

  it("a connection cut by the peer is a reset", async () => {
    const error = await failure(new PeerClient({ sign }).capabilities(misbehaving("/reset")));
    expect(error.kind).toBe("reset");
    expect(error.message).toMatch(/connection reset by the peer/);
  });

  it("a stream cut mid-way ends with an error chunk, not an exception", async () => {
    const sockets: Socket[] = [];
    const cutting = createServer((req, res) => {
      sockets.push(req.socket);
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write(`${JSON.stringify({ type: "token", text: "Hi" })}\n`, () => req.socket.resetAndDestroy());
    });
    await new Promise<void>((resolve) => cutting.listen(0, "127.0.0.1", resolve));
    try {
      const chunks = [];
      for await (const chunk of new PeerClient({ sign }).infer(
        { machine: "linux", url: `http://127.0.0.1:${(cutting.address() as AddressInfo).port}` },
        request,
      ))
        chunks.push(chunk);
      expect(chunks[0]).toEqual({ type: "token", text: "Hi" });
      expect(chunks[1]).toMatchObject({ type: "error", code: "peer_stream_broken", layer: "data-plane" });
    } finally {
      cutting.closeAllConnections();
      await new Promise((resolve) => cutting.close(resolve));
    }
  });
});
