import { serve, type ServerType } from "@hono/node-server";
import { MemoryLimits, MemorySearchResponse, MemoryStatus, type PeerMemorySearchRequest } from "@potluck/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { PeerClient } from "@potluck/peer";
import { httpPeerSearcher, staticRoster, type FleetPeer } from "../src/memory/fleet.js";
import { memoryRoutes, peerMemoryRoutes } from "../src/memory/routes.js";
import { peerSharing, type PeerSharing } from "../src/memory/sharing.js";
import type { MemoryStore } from "../src/memory/store.js";
import { peerAccess } from "../src/middleware/peer-access.js";
import { openStore, scratchDir } from "./memory-helpers.js";

/**
 * Stand-in for the shared signed-request check: requires a header, so "unsigned" is provable, and
 * sets the verified caller as the real check does ("yes" is linux, an own machine).
 */
/** The roster's owners of the callers below. */
const owners: Record<string, string> = { linux: "home", mac: "home", evil: "eve" };
const testAuth: MiddlewareHandler = async (c, next) => {
  const signed = c.req.header("x-test-signed");
  if (signed === undefined) return c.json({ error: { code: "unauthorized", message: "unsigned peer request" } }, 401);
  const machine = signed === "yes" ? "linux" : signed;
  c.set("peer", { machine, owner: owners[machine] });
  await next();
};

function sidecarLike(
  store: MemoryStore,
  options: {
    machine?: string;
    caller?: string;
    sharing?: PeerSharing;
    fleet?: Parameters<typeof memoryRoutes>[0]["fleet"];
  } = {},
) {
  const sharing = options.sharing ?? peerSharing(false);
  const machine = options.machine ?? "mac";
  const { enabled: peerSearchEnabled, set: setPeerSearchEnabled } = sharing;
  return new Hono()
    .use(peerAccess({ remoteAddress: () => options.caller ?? "127.0.0.1" }))
    .route(
      "/",
      memoryRoutes({
        store,
        machine,
        owner: "home",
        peerSearchEnabled,
        setPeerSearchEnabled,
        shares: sharing,
        fleet: options.fleet,
      }),
    )
    .route(
      "/",
      peerMemoryRoutes({ store, machine, owner: "home", peerSearchEnabled, shares: sharing, auth: testAuth }),
    );
}

function post(app: { request: Hono["request"] }, path: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function errorOf(res: Response): Promise<{ code: string; message: string; field?: string }> {
  return ((await res.json()) as { error: { code: string; message: string; field?: string } }).error;
}

describe("local memory API", () => {
  let scratch: ReturnType<typeof scratchDir>;
  let store: MemoryStore;
  beforeEach(async () => {
    scratch = scratchDir();
    store = await openStore(scratch.dir);
  });
  afterEach(() => {
    store.close();
    scratch.cleanup();
  });

  it("writes, reads, searches and deletes", async () => {
    const app = sidecarLike(store);
    const created = await post(app, "/memory", { text: "the NAS backs up at 3am", project: "home", tags: ["nas"] });
    expect(created.status).toBe(201);
    const { record } = (await created.json()) as { record: { id: string } };
    expect((await app.request(`/memory/${record.id}`)).status).toBe(200);
    const search = await post(app, "/memory/search", { query: "when does the NAS back up", project: "home" });
    const body = MemorySearchResponse.parse(await search.json());
    expect(body.hits[0]).toMatchObject({ machine: "mac", record: { id: record.id, tags: ["nas"] } });
    expect(body.machines).toEqual([{ machine: "mac", status: "answered", hits: 1 }]);
    expect((await app.request(`/memory/${record.id}`, { method: "DELETE" })).status).toBe(204);
    const missing = await app.request(`/memory/${record.id}`);
    expect(missing.status).toBe(404);
    expect((await errorOf(missing)).field).toBe("id");
  });

  it("answers bad input with a 400 naming the field", async () => {
    const app = sidecarLike(store);
    const cases: [unknown, string][] = [
      ["{not json", "body"],
      [{}, "text"],
      [{ text: "x".repeat(MemoryLimits.textCharsMax + 1) }, "text"],
      [{ text: "ok", confidence: 2 }, "confidence"],
      [{ text: "ok", project: "no spaces allowed" }, "project"],
      [{ text: "ok", tags: [""] }, "tags.0"],
      [{ text: "ok", embedding: [1, 2, 3] }, "embedding"],
      [{ text: "ok", embedding: ["a"] }, "embedding.0"],
    ];
    for (const [body, field] of cases) {
      const res = await post(app, "/memory", body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect((await errorOf(res)).field, JSON.stringify(body).slice(0, 60)).toBe(field);
    }
    const badSearch = await post(app, "/memory/search", { query: "", limit: 1000 });
    expect(badSearch.status).toBe(400);
    expect((await errorOf(badSearch)).field).toBe("query");
    const tooBig = await post(app, "/memory", { text: "x".repeat(MemoryLimits.bodyBytesMax) });
    expect(tooBig.status).toBe(413);
    expect(store.counts().records).toBe(0);
  });

  it("refuses off-box callers on /memory*", async () => {
    const app = sidecarLike(store, { caller: "100.64.0.9" });
    for (const [method, path] of [
      ["POST", "/memory"],
      ["POST", "/memory/search"],
      ["GET", "/memory/status"],
      ["DELETE", "/memory/x"],
    ] as const) {
      const res = await app.request(path, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "POST" ? "{}" : undefined,
      });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
  });

  it("reports status: embedder, counts, opt-in", async () => {
    const app = sidecarLike(store, { sharing: peerSharing(true) });
    await post(app, "/memory", { text: "one", pinned: true });
    const status = MemoryStatus.parse(await (await app.request("/memory/status")).json());
    expect(status).toMatchObject({
      machine: "mac",
      embedder: { id: "lexical-v1:384", dimensions: 384 },
      records: 1,
      pinned: 1,
      peerSearchEnabled: true,
    });
  });
});

describe("peer memory search", () => {
  let scratch: ReturnType<typeof scratchDir>;
  let store: MemoryStore;
  beforeEach(async () => {
    scratch = scratchDir();
    store = await openStore(scratch.dir);
    await store.add({
      text: "the router admin page is at 192.168.1.1",
      project: "home",
      tags: [],
      confidence: 1,
      pinned: false,
    });
  });
  afterEach(() => {
    store.close();
    scratch.cleanup();
  });

  it("is 401 unsigned, 503 with the reason when off, 200 after enabling without a restart", async () => {
    const sharing = peerSharing(false);
    const app = sidecarLike(store, { caller: "100.64.0.9", sharing });
    const query = { query: "router admin page" };
    expect((await post(app, "/peer/memory/search", query)).status).toBe(401);
    const off = await post(app, "/peer/memory/search", query, { "x-test-signed": "yes" });
    expect(off.status).toBe(503);
    expect((await errorOf(off)).message).toMatch(/POTLUCK_PEER_MEMORY_ENABLED=1/);
    sharing.set(true);
    const on = await post(app, "/peer/memory/search", query, { "x-test-signed": "yes" });
    expect(on.status).toBe(200);
    expect(MemorySearchResponse.parse(await on.json()).hits[0]?.record.text).toMatch(/router admin/);
    sharing.set(false);
    expect((await post(app, "/peer/memory/search", query, { "x-test-signed": "yes" })).status).toBe(503);
  });

  it("toggles through the local PUT /memory/peer-search", async () => {
    const sharing = peerSharing(false);
    const local = sidecarLike(store, { sharing });
    const peer = sidecarLike(store, { caller: "100.64.0.9", sharing });
    const put = await local.request("/memory/peer-search", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ enabled: true }),
    });
    expect(await put.json()).toEqual({ enabled: true });
    expect((await post(peer, "/peer/memory/search", { query: "router" }, { "x-test-signed": "yes" })).status).toBe(200);
    // Off-box callers cannot flip the switch themselves.
    expect(
      (await peer.request("/memory/peer-search", { method: "PUT", body: JSON.stringify({ enabled: false }) })).status,
    ).toBe(403);
  });

  it("is read-only: no write route on the peer surface, and records are not re-accessed", async () => {
    const app = sidecarLike(store, { caller: "100.64.0.9", sharing: peerSharing(true) });
    const before = (
      await store.search("router", { minConfidence: 0, limit: 1, includeCold: true }, { touch: false })
    )[0]?.record.accessedAt;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await post(app, "/peer/memory/search", { query: "router" }, { "x-test-signed": "yes" });
    const after = (await store.search("router", { minConfidence: 0, limit: 1, includeCold: true }, { touch: false }))[0]
      ?.record.accessedAt;
    expect(after).toBe(before);
    expect((await post(app, "/peer/memory", { text: "x" }, { "x-test-signed": "yes" })).status).toBe(404);
  });

  it("manages per-project grants on loopback only, and refuses a grant to this machine's own owner", async () => {
    const sharing = peerSharing(false);
    const local = sidecarLike(store, { sharing });
    const send = (app: typeof local, method: string, body: unknown) =>
      app.request("/memory/sharing/shares", {
        method,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect(
      (await send(sidecarLike(store, { caller: "100.64.0.9", sharing }), "POST", { project: "home", owner: "eve" }))
        .status,
    ).toBe(403);
    const own = await send(local, "POST", { project: "home", owner: "home" });
    expect(own.status).toBe(400);
    expect(await errorOf(own)).toMatchObject({ field: "owner" });
    expect((await send(local, "POST", { project: "../x", owner: "eve" })).status).toBe(400);
    expect(await (await send(local, "POST", { project: "home", owner: "eve" })).json()).toEqual({
      peerSearchEnabled: false,
      shares: [{ project: "home", owner: "eve" }],
    });
    // eve's machine now reads project home, and only it, even with the own-machine opt-in off.
    const evil = await post(
      sidecarLike(store, { caller: "100.64.0.9", sharing }),
      "/peer/memory/search",
      { query: "router", project: "home" },
      { "x-test-signed": "evil" },
    );
    expect(MemorySearchResponse.parse(await evil.json()).hits.map((h) => h.record.project)).toEqual(["home"]);
    expect((await send(local, "DELETE", { project: "home", owner: "eve" })).status).toBe(200);
    expect((await send(local, "DELETE", { project: "home", owner: "eve" })).status).toBe(404);
    expect(await (await local.request("/memory/sharing")).json()).toEqual({ peerSearchEnabled: false, shares: [] });
  });

  it("refuses a caller with no owner on the roster with a 403", async () => {
    const app = sidecarLike(store, { caller: "100.64.0.9", sharing: peerSharing(true) });
    const res = await post(app, "/peer/memory/search", { query: "router" }, { "x-test-signed": "ghost" });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).message).toMatch(/no owner on this machine's roster/);
  });

  it("rejects a fleet scope over the peer path (no recursion) with a 400", async () => {
    const app = sidecarLike(store, { caller: "100.64.0.9", sharing: peerSharing(true) });
    const res = await post(app, "/peer/memory/search", { query: "", scope: "fleet" }, { "x-test-signed": "yes" });
    expect(res.status).toBe(400);
  });
});

describe("fleet search over real HTTP", () => {
  const servers: ServerType[] = [];
  const cleanups: (() => void)[] = [];
  afterAll(async () => {
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
    for (const cleanup of cleanups) cleanup();
  });

  async function peerServer(machine: string, text: string, enabled: boolean): Promise<FleetPeer> {
    const scratch = scratchDir();
    const store = await openStore(scratch.dir);
    cleanups.push(() => {
      store.close();
      scratch.cleanup();
    });
    await store.add({ text, project: "default", tags: [], confidence: 1, pinned: false });
    const app = sidecarLike(store, { machine, caller: "100.64.0.5", sharing: peerSharing(enabled) });
    return listen(machine, app.fetch);
  }

  function listen(machine: string, fetch: (req: Request) => Response | Promise<Response>): Promise<FleetPeer> {
    return new Promise((resolve) => {
      const server = serve({ fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
        resolve({ machine, owner: "home", url: `http://127.0.0.1:${info.port}` }),
      );
      servers.push(server);
    });
  }

  it("merges by score and says how each machine answered, within the deadline", async () => {
    const linux = await peerServer("linux", "the GPU box has a 2080 Ti with 11 GB", true);
    const windows = await peerServer("windows", "the gaming PC has an AMD GPU", false);
    const stuck = await listen("mini", () => new Promise<Response>(() => undefined));
    const dead = await listen("closet", () => new Response("bye"));
    const closing = servers.at(-1);
    await new Promise((resolve) => closing?.close(resolve));

    const scratch = scratchDir();
    const store = await openStore(scratch.dir);
    cleanups.push(() => {
      store.close();
      scratch.cleanup();
    });
    await store.add({ text: "my mac has an M2 GPU", project: "default", tags: [], confidence: 1, pinned: false });
    const signedBodies: PeerMemorySearchRequest[] = [];
    const search = httpPeerSearcher(
      new PeerClient({
        sign: ({ body }) => {
          signedBodies.push(JSON.parse(body) as PeerMemorySearchRequest);
          return { "x-test-signed": "yes" };
        },
      }),
    );
    const roster = staticRoster([
      linux,
      windows,
      stuck,
      dead,
      { machine: "mac", owner: "home", url: "http://127.0.0.1:1" },
    ]);
    const app = sidecarLike(store, { fleet: { roster, search } });
    const res = await post(app, "/memory/search", { query: "which GPU", scope: "fleet", deadlineMs: 1_500 });
    expect(res.status).toBe(200);
    const body = MemorySearchResponse.parse(await res.json());
    const statusOf = Object.fromEntries(body.machines.map((m) => [m.machine, m.status]));
    expect(statusOf).toEqual({
      mac: "answered",
      linux: "answered",
      windows: "disabled",
      mini: "timeout",
      closet: "unreachable",
    });
    expect(body.machines.find((m) => m.machine === "windows")?.reason).toMatch(/opt-in/);
    expect(body.hits.map((h) => h.machine).sort()).toEqual(["linux", "mac"]);
    const scores = body.hits.map((h) => h.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(signedBodies.every((b) => !("scope" in b))).toBe(true);
  });
});
