import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { PeerCallError, PeerClient } from "@potluck/peer";
import { MemorySearchResponse, MemorySharing, type MemoryWriteRequest } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { peerSharing, sharesFileName } from "../src/memory/sharing.js";
import { testEngineOptions } from "./fixtures.js";
import { directoryFor, newIdentity, startSidecar, writeRoster, type RunningSidecar } from "./harness.js";

// Attack 4: a machine of another owner ("evil", owner eve, signing with its own real key) reads
// home's memory. Real listening sidecars of owner home with real memory stores in their data
// directories, a roster file naming all three, signed calls through libs/peer's one client, and
// a real HTTP server standing in for eve's machine that records every request it gets.
const ids = { mac: newIdentity("mac"), linux: newIdentity("linux"), evil: newIdentity("evil") };
const roster = writeRoster([
  { name: "mac", owner: "home", identity: ids.mac },
  { name: "linux", owner: "home", identity: ids.linux },
  { name: "evil", owner: "eve", identity: ids.evil },
]);
const urls = new Map<string, string>();
const engine = new LlamaEngine(testEngineOptions);
let mac: RunningSidecar;
let linux: RunningSidecar;
/** eve's machine as mac's fleet search would reach it: records every request body. */
let recorder: { server: Server; bodies: string[] };
const evil = new PeerClient({ sign: ids.evil.sign });
const linuxAsPeer = () => ({ machine: "linux", url: linux.url });

const records: MemoryWriteRequest[] = [
  { text: "the garden hose splitter is in the shed", project: "garden", tags: [], confidence: 1, pinned: false },
  { text: "tax return password hint: the cat's birthday", project: "taxes", tags: [], confidence: 1, pinned: false },
  { text: "always file taxes before April", project: "taxes", tags: [], confidence: 1, pinned: true },
  { text: "the shed key hangs by the garden door", project: "default", tags: [], confidence: 1, pinned: true },
];

beforeAll(async () => {
  recorder = await recordingServer();
  urls.set("evil", `http://127.0.0.1:${(recorder.server.address() as AddressInfo).port}`);
  linux = await startSidecar({
    machine: "linux",
    engine,
    identity: ids.linux,
    directory: directoryFor(roster.path, "linux", urls),
    memory: true,
  });
  mac = await startSidecar({
    machine: "mac",
    engine,
    identity: ids.mac,
    directory: directoryFor(roster.path, "mac", urls),
    memory: true,
  });
  urls.set("linux", linux.url).set("mac", mac.url);
  for (const record of records) expect((await local(linux, "POST", "/memory", record)).status).toBe(201);
  // Own machines may search each other: the opt-in is on, and still eve reads nothing by it.
  linux.service.sharing.set(true);
  mac.service.sharing.set(true);
});

afterAll(async () => {
  for (const s of [mac, linux]) await s?.close();
  await engine.close();
  await new Promise((resolve) => recorder?.server.close(resolve));
  roster.cleanup();
});

describe("peer memory search from another owner", () => {
  it("refuses an unshared project, or none, with a 403 naming why; nothing read, nothing written", async () => {
    const before = snapshot(join(linux.dataDir, "memory"));
    for (const body of [
      { query: "tax password", project: "taxes" },
      { query: "tax password" },
      { query: "hose", project: "garden" },
    ]) {
      const error = await evil
        .memorySearch(
          linuxAsPeer(),
          { minConfidence: 0, limit: 10, includeCold: true, ...body },
          AbortSignal.timeout(5_000),
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(PeerCallError);
      expect(error).toMatchObject({ status: 403, code: "not_shared" });
      expect((error as PeerCallError).serverMessage).toMatch(/eve/);
    }
    expect(snapshot(join(linux.dataDir, "memory"))).toEqual(before);
  });

  it("answers a project shared with eve by name, with that project's records alone", async () => {
    const shared = await local(linux, "POST", "/memory/sharing/shares", { project: "garden", owner: "eve" });
    expect(shared.status).toBe(200);
    expect(MemorySharing.parse(await shared.json()).shares).toEqual([{ project: "garden", owner: "eve" }]);
    const before = snapshot(join(linux.dataDir, "memory"));
    const answer = await evil.memorySearch(
      linuxAsPeer(),
      { query: "shed garden taxes", project: "garden", minConfidence: 0, limit: 10, includeCold: true },
      AbortSignal.timeout(5_000),
    );
    expect(answer.hits.map((h) => h.record.text)).toEqual([records[0]!.text]);
    // Still no other project, pinned records included.
    const refused = await evil
      .memorySearch(
        linuxAsPeer(),
        { query: "taxes", project: "taxes", minConfidence: 0, limit: 10, includeCold: true },
        AbortSignal.timeout(5_000),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refused).toMatchObject({ status: 403, code: "not_shared" });
    expect(snapshot(join(linux.dataDir, "memory"))).toEqual(before);
    // The grant is kept in the data directory, so a restart keeps it.
    expect(peerSharing(false, { path: join(linux.dataDir, sharesFileName) }).allows("eve", "garden")).toBe(true);
    // An own machine still searches everything.
    const own = await new PeerClient({ sign: ids.mac.sign }).memorySearch(
      linuxAsPeer(),
      { query: "taxes", minConfidence: 0, limit: 10, includeCold: true },
      AbortSignal.timeout(5_000),
    );
    expect(own.hits.some((h) => h.record.project === "taxes")).toBe(true);
    expect((await local(linux, "DELETE", "/memory/sharing/shares", { project: "garden", owner: "eve" })).status).toBe(
      200,
    );
    await expect(
      evil.memorySearch(
        linuxAsPeer(),
        { query: "hose", project: "garden", minConfidence: 0, limit: 10, includeCold: true },
        AbortSignal.timeout(5_000),
      ),
    ).rejects.toMatchObject({ status: 403 });
  });
});

describe("fleet search from home with eve on the roster", () => {
  it("never sends the query text to eve's machine unless the named project is shared with eve", async () => {
    recorder.bodies.length = 0;
    for (const body of [
      { query: "where is the tax password" },
      { query: "where is the tax password", project: "taxes" },
    ]) {
      const res = await local(mac, "POST", "/memory/search", { ...body, scope: "fleet", deadlineMs: 3_000 });
      expect(res.status).toBe(200);
      const answer = MemorySearchResponse.parse(await res.json());
      expect(answer.machines.map((m) => m.machine).sort()).toEqual(["linux", "mac"]);
    }
    expect(recorder.bodies).toEqual([]);
    // Shared by name: eve's machine is asked about that project (and only then).
    expect((await local(mac, "POST", "/memory/sharing/shares", { project: "garden", owner: "eve" })).status).toBe(200);
    const res = await local(mac, "POST", "/memory/search", {
      query: "hose",
      project: "garden",
      scope: "fleet",
      deadlineMs: 3_000,
    });
    expect(
      MemorySearchResponse.parse(await res.json())
        .machines.map((m) => m.machine)
        .sort(),
    ).toEqual(["evil", "linux", "mac"]);
    expect(recorder.bodies).toHaveLength(1);
    expect(JSON.parse(recorder.bodies[0]!)).toMatchObject({ query: "hose", project: "garden" });
  });
});

function local(sidecar: RunningSidecar, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${sidecar.url}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Every file under `dir` with its bytes, to compare a store before and after an attack. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile()) out[name] = readFileSync(path).toString("base64");
  }
  return out;
}

function recordingServer(): Promise<{ server: Server; bodies: string[] }> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      bodies.push(body);
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ hits: [], machines: [] }));
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, bodies })));
}
