import { MemorySearchResponse, type Capabilities } from "@potluck/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadSidecarConfig } from "../src/config.js";
import type { MemoryStore } from "../src/memory/store.js";
import type { PeerDirectory } from "../src/peer/directory.js";
import { startSidecarService, type SidecarService } from "../src/service.js";
import { newIdentity } from "./harness.js";
import { defaults, openStore, scratchDir } from "./memory-helpers.js";

// The memory routes as mounted in the real sidecar (startSidecarService, no model, no NATS):
// peer-access middleware in front, and the shared Ed25519 verifier (libs/peer signing.ts) on
// /peer/memory/search.
describe("memory in the sidecar app", () => {
  const linux = newIdentity("linux");
  const stranger = newIdentity("stranger");
  const directory: PeerDirectory = {
    peers: async () => [
      { machine: "linux", owner: "home", url: "http://100.64.0.3:8321", identityPublicKey: linux.publicKey },
    ],
    signer: async (machine) =>
      machine === "linux" ? { machine, owner: "home", identityPublicKey: linux.publicKey } : undefined,
  };
  let scratch: ReturnType<typeof scratchDir>;
  let store: MemoryStore;
  let service: SidecarService;
  /** Where the next request comes from (app.request() has no socket to read it from). */
  let caller = "127.0.0.1";
  beforeEach(async () => {
    scratch = scratchDir();
    store = await openStore(scratch.dir);
    await store.add({ ...defaults, text: "the backup drive is the grey one labelled B2", project: "home" });
    const config = loadSidecarConfig(
      { POTLUCK_MACHINE: "mac", POTLUCK_DATA_DIR: scratch.dir, POTLUCK_CPU_PIN: "off", POTLUCK_OLLAMA_PORT: "0" },
      [],
    );
    service = await startSidecarService(config, {
      nats: null,
      models: [],
      diagnostics: null,
      directory,
      identity: newIdentity("mac"),
      remoteAddress: () => caller,
      memory: { store, embedder: store.embedder, close: async () => undefined },
    });
  });
  afterEach(async () => {
    await service.close();
    store.close();
    scratch.cleanup();
  });

  /** The app as a caller at `address` reaches it. */
  function app(address: string) {
    return {
      request: (path: string, init?: RequestInit) => {
        caller = address;
        return service.app.request(path, init);
      },
    };
  }

  function signed(identity: ReturnType<typeof newIdentity>, body: unknown): RequestInit {
    const text = JSON.stringify(body);
    return {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...identity.sign({ method: "POST", path: "/peer/memory/search", body: text, target: "mac" }),
      },
      body: text,
    };
  }

  it("401 unsigned or unknown key, 503 while off, 200 once on; replays refused", async () => {
    const sidecar = app("100.64.0.3");
    const body = { query: "which backup drive", project: "home" };
    const unsigned = await sidecar.request("/peer/memory/search", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(unsigned.status).toBe(401);
    expect((await sidecar.request("/peer/memory/search", signed(stranger, body))).status).toBe(401);
    const off = await sidecar.request("/peer/memory/search", signed(linux, body));
    expect(off.status).toBe(503);
    service.sharing.set(true);
    const request = signed(linux, body);
    const on = await sidecar.request("/peer/memory/search", request);
    expect(on.status).toBe(200);
    expect(MemorySearchResponse.parse(await on.json()).hits[0]?.record.text).toMatch(/grey one/);
    expect((await sidecar.request("/peer/memory/search", request)).status).toBe(401);
  });

  it("keeps /memory* loopback-only and reports the embedder in capabilities", async () => {
    expect((await app("100.64.0.3").request("/memory/search", { method: "POST", body: "{}" })).status).toBe(403);
    const local = await app("127.0.0.1").request("/memory/search", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "backup drive" }),
    });
    expect(local.status).toBe(200);
    const caps = (await (
      await app("100.64.0.3").request("/peer/capabilities", {
        method: "GET",
        headers: linux.sign({ method: "GET", path: "/peer/capabilities", body: "", target: "mac" }),
      })
    ).json()) as Capabilities;
    expect(caps.embedder).toEqual({ id: "lexical-v1:384", dimensions: 384, state: "ready" });
    expect(caps.memory).toEqual({ peerSearchEnabled: false, records: 1 });
  });
});
