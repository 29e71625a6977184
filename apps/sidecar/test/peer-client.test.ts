import { createServer, type Agent, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PeerClient, peerAgents } from "@potluck/peer";
import type { PeerRecord } from "../src/peer/directory.js";
import { readyTinyEngine } from "./fixtures.js";
import { directoryFor, newIdentity, startSidecar, writeRoster, type RunningSidecar } from "./harness.js";

// The peer client against a real listening sidecar with the tiny model: which TCP connections it
// opens and keeps, counted on the serving side.
const ids = { mac: newIdentity("mac"), linux: newIdentity("linux") };
const roster = writeRoster([
  { name: "mac", owner: "home", identity: ids.mac },
  { name: "linux", owner: "home", identity: ids.linux },
]);
let linux: RunningSidecar;
let close: () => Promise<void>;
let model: string;
let peer: PeerRecord;
const connections: Socket[] = [];

beforeAll(async () => {
  const urls = new Map<string, string>();
  const served = await readyTinyEngine();
  model = served.id;
  linux = await startSidecar({
    machine: "linux",
    engine: served.engine,
    identity: ids.linux,
    directory: directoryFor(roster.path, "linux", urls),
  });
  linux.server.on("connection", (socket: Socket) => connections.push(socket));
  peer = { machine: "linux", owner: "home", url: linux.url, identityPublicKey: ids.linux.publicKey };
  close = () => served.engine.close();
});

afterAll(async () => {
  await linux?.close();
  await close?.();
  roster.cleanup();
});

const request = (maxTokens: number) => ({
  jobId: `job-${Math.random()}`,
  model,
  messages: [{ role: "user" as const, content: "hi" }],
  maxTokens,
  temperature: 0,
  requester: { machine: "mac", owner: "home" },
});

describe("peer client connections", () => {
  it("keeps its connections across probes and whole streams instead of opening one per call", async () => {
    const agents = peerAgents();
    const client = new PeerClient({ sign: ids.mac.sign, agents });
    const before = connections.length;
    for (let i = 0; i < 4; i++) {
      await client.probe(peer);
      const chunks = [];
      for await (const chunk of client.infer(peer, request(4))) chunks.push(chunk);
      expect(chunks.at(-1)).toMatchObject({ type: "done", servedBy: "linux" });
      // The response's last bytes are drained after the final chunk; then the socket is free again.
      await expect.poll(() => freeSockets(agents.stream)).toBe(1);
    }
    // One for probes (kept apart from streams), one for streams.
    expect(connections.length - before).toBe(2);
  });

  it("closes the connection of a stream its caller stops early, so the peer stops generating", async () => {
    const client = new PeerClient({ sign: ids.mac.sign });
    const before = connections.length;
    for await (const chunk of client.infer(peer, request(64))) {
      expect(chunk.type).toBe("token");
      break;
    }
    const opened = connections.slice(before);
    expect(opened).toHaveLength(1);
    await expect.poll(() => opened[0]!.destroyed).toBe(true);
  });
});

describe("peer client on a connection the peer dropped", () => {
  let server: Server;
  let url: string;
  const seen: Socket[] = [];
  beforeAll(async () => {
    // Answers probes, but resets a kept-alive connection on its second request: what a client sees
    // when the peer closed an idle connection just as the client reused it.
    server = createServer((req, res) => {
      const socket = req.socket;
      const count = ((socket as Socket & { requests?: number }).requests =
        ((socket as Socket & { requests?: number }).requests ?? 0) + 1);
      if (count > 1) {
        socket.resetAndDestroy();
        return;
      }
      if (!seen.includes(socket)) seen.push(socket);
      let body = "";
      req
        .setEncoding("utf8")
        .on("data", (d: string) => (body += d))
        .on("end", () => {
          const { payload } = JSON.parse(body) as { payload: string };
          res
            .writeHead(200, { "content-type": "application/json", "keep-alive": "timeout=60" })
            .end(JSON.stringify({ machine: "linux", bytes: payload.length, payload }));
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));

  it("sends the request once more on a fresh connection instead of failing the probe", async () => {
    const agents = peerAgents();
    const client = new PeerClient({ sign: ids.mac.sign, agents });
    const target = { ...peer, url };
    await client.probe(target);
    await expect.poll(() => freeSockets(agents.large)).toBe(1);
    await expect(client.probe(target)).resolves.toMatchObject({ latencyMs: expect.any(Number) });
    expect(seen).toHaveLength(2);
  });
});

function freeSockets(agent: Agent): number {
  return Object.values(agent.freeSockets).reduce((n, list) => n + (list?.length ?? 0), 0);
}
