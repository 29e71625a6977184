import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorBody, SidecarLimits } from "@potluck/protocol";
import { serveApp, type ServedApp } from "@potluck/service";
import { floodChunkedBody } from "@potluck/service/testing";
import { ReplayCache, signRequest } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSidecarConfig, startSidecarService, type SidecarService } from "../src/index.js";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { noPeers, type PeerDirectory } from "../src/peer/directory.js";
import { testEngineOptions } from "./fixtures.js";
import { directoryFor, newIdentity, recordingUsage, writeRoster } from "./harness.js";

// Attacks on the sidecar's own machine: a web page reaching the loopback API by DNS rebinding or
// from another origin (attack 6), and an unauthenticated chunked body meant to exhaust memory
// before the signature check refuses it (attack 7). The real service (startSidecarService), a
// real memory store, real sockets; state is compared before and after.

const apiKey = "guards-test-key-0123456789";

interface Running {
  service: SidecarService;
  served: ServedApp;
  base: string;
  close(): Promise<void>;
}

async function startReal(
  env: Record<string, string> = {},
  hostname = "127.0.0.1",
  overrides: { directory?: PeerDirectory; replay?: ReplayCache } = {},
): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-guards-"));
  const config = loadSidecarConfig(
    {
      POTLUCK_MACHINE: "home1",
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_CPU_PIN: "off",
      POTLUCK_THREADS: "1",
      POTLUCK_OLLAMA_PORT: "0",
      ...env,
    },
    [],
  );
  const engine = new LlamaEngine(testEngineOptions);
  const service = await startSidecarService(config, {
    engine,
    identity: newIdentity("home1"),
    directory: noPeers,
    models: [],
    diagnostics: null,
    nats: null,
    usage: recordingUsage(),
    version: "test",
    ...overrides,
  });
  await service.warm;
  const served = await serveApp(service.app, { port: 0, hostname });
  return {
    service,
    served,
    base: `http://127.0.0.1:${served.port}`,
    close: async () => {
      await served.close();
      await service.close();
      await engine.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

interface Answer {
  status: number;
  body: string;
}

/** A request with headers of the test's choosing (fetch would not let it set Host). */
function send(
  port: number,
  options: { method: string; path: string; headers?: Record<string, string>; body?: string; address?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const headers = {
      ...(body === undefined ? {} : { "content-type": "application/json", "content-length": String(body.length) }),
      ...options.headers,
    };
    const req = request(
      { host: options.address ?? "127.0.0.1", port, path: options.path, method: options.method, headers },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (part: Buffer) => parts.push(part));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString("utf8") }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function errorOf(answer: Answer) {
  return ErrorBody.parse(JSON.parse(answer.body)).error;
}

describe("attack 6: the loopback API from a web page", () => {
  let sidecar: Running;
  beforeAll(async () => {
    sidecar = await startReal();
  });
  afterAll(() => sidecar.close());

  it("refuses every local route under a rebound Host or a foreign Origin, and nothing changes", async () => {
    const port = sidecar.served.port;
    const honest = { host: `127.0.0.1:${port}` };
    const written = await send(port, {
      method: "POST",
      path: "/memory",
      headers: honest,
      body: JSON.stringify({ text: "the router lives in routing/router.ts" }),
    });
    expect(written.status).toBe(201);
    const id = (JSON.parse(written.body) as { record: { id: string } }).record.id;
    const before = {
      counts: (await send(port, { method: "GET", path: "/memory/status", headers: honest })).body,
      sharing: sidecar.service.sharing.enabled(),
    };

    const rebound = { host: `rebind.attacker.example:${port}` };
    const crossSite = { host: `127.0.0.1:${port}`, origin: "http://attacker.example" };
    const attempts = [
      { method: "GET", path: `/memory/${id}` },
      { method: "POST", path: "/memory/search", body: JSON.stringify({ query: "router" }) },
      { method: "POST", path: "/memory", body: JSON.stringify({ text: "planted" }) },
      { method: "DELETE", path: `/memory/${id}` },
      { method: "PUT", path: "/memory/peer-search", body: JSON.stringify({ enabled: true }) },
      {
        method: "POST",
        path: "/v1/chat/completions",
        body: JSON.stringify({ model: "any", messages: [{ role: "user", content: "hi" }] }),
      },
      { method: "GET", path: "/v1/models" },
    ];
    for (const attempt of attempts) {
      for (const [headers, field] of [
        [rebound, "host"],
        [crossSite, "origin"],
      ] as const) {
        const answer = await send(port, { ...attempt, headers });
        expect(answer.status, `${attempt.method} ${attempt.path} ${field}`).toBe(403);
        expect(errorOf(answer)).toMatchObject({ code: "forbidden", field });
      }
    }

    const after = {
      counts: (await send(port, { method: "GET", path: "/memory/status", headers: honest })).body,
      sharing: sidecar.service.sharing.enabled(),
    };
    expect(after).toEqual(before);
    expect(after.sharing).toBe(false);
    const still = await send(port, { method: "GET", path: `/memory/${id}`, headers: honest });
    expect(still.status).toBe(200);
  });

  it("keeps serving the CLI and the dashboard's own page: loopback Host, loopback Origin", async () => {
    const port = sidecar.served.port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      expect((await send(port, { method: "GET", path: "/v1/models", headers: { host } })).status, host).toBe(200);
    }
    const fromPage = await send(port, {
      method: "PUT",
      path: "/memory/peer-search",
      headers: { host: `localhost:${port}`, origin: `http://localhost:${port}` },
      body: JSON.stringify({ enabled: false }),
    });
    expect(fromPage.status).toBe(200);
    const viaFetch = await fetch(`${sidecar.base}/v1/models`);
    expect(viaFetch.status).toBe(200);
  });

  it("leaves /health and /peer/* to their own checks (signatures), whatever the Host", async () => {
    const port = sidecar.served.port;
    expect((await send(port, { method: "GET", path: "/health", headers: { host: "100.64.0.2:8321" } })).status).toBe(
      200,
    );
    const unsigned = await send(port, {
      method: "GET",
      path: "/peer/capabilities",
      headers: { host: "100.64.0.2:8321" },
    });
    expect(unsigned.status).toBe(401);
  });
});

describe("attack 6: opening the local API to the LAN", () => {
  const lanAddress = Object.values(networkInterfaces())
    .flat()
    .find((i) => i !== undefined && i.family === "IPv4" && !i.internal)?.address;

  it.skipIf(lanAddress === undefined)("serves a LAN caller only with POTLUCK_API_KEY as a bearer token", async () => {
    const sidecar = await startReal({ POTLUCK_API_KEY: apiKey }, "0.0.0.0");
    try {
      const port = sidecar.served.port;
      const lan = { address: lanAddress!, method: "GET", path: "/v1/models" };
      const without = await send(port, { ...lan, headers: { host: `${lanAddress}:${port}` } });
      expect(without.status).toBe(403);
      expect(errorOf(without).field).toBe("address");
      const wrong = await send(port, {
        ...lan,
        headers: { host: `${lanAddress}:${port}`, authorization: "Bearer not-the-key-at-all" },
      });
      expect(wrong.status).toBe(401);
      const withKey = await send(port, {
        ...lan,
        headers: { host: `${lanAddress}:${port}`, authorization: `Bearer ${apiKey}` },
      });
      expect(withKey.status).toBe(200);
    } finally {
      await sidecar.close();
    }
  });

  it.skipIf(lanAddress === undefined)("without a key the LAN is refused, bearer token or not", async () => {
    const sidecar = await startReal({}, "0.0.0.0");
    try {
      const port = sidecar.served.port;
      const answer = await send(port, {
        address: lanAddress!,
        method: "GET",
        path: "/v1/models",
        headers: { authorization: `Bearer ${apiKey}` },
      });
      expect(answer.status).toBe(403);
      expect(errorOf(answer).message).toContain("POTLUCK_API_KEY");
    } finally {
      await sidecar.close();
    }
  });
});

describe("attack 7: an unauthenticated chunked body on /peer/*", () => {
  let sidecar: Running;
  beforeAll(async () => {
    sidecar = await startReal();
  });
  afterAll(() => sidecar.close());

  for (const method of ["POST", "GET"]) {
    it(`answers ${method} /peer/capabilities with 413 long before 300 MiB, and memory does not grow by the body`, async () => {
      const attackBytes = 300 * 1024 * 1024;
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      const result = await floodChunkedBody(sidecar.served.port, {
        method,
        path: "/peer/capabilities",
        totalBytes: attackBytes,
        headers: { "x-potluck-machine": "eve" },
      });
      const grownBytes = process.memoryUsage().rss - rssBefore;
      expect(result.status).toBe(413);
      expect(ErrorBody.parse(JSON.parse(result.body)).error.code).toBe("body_too_large");
      // Refused within a few socket buffers of the limit, not after the whole body.
      expect(result.sentBytes).toBeLessThan(SidecarLimits.bodyBytesMax + 16 * 1024 * 1024);
      expect(grownBytes).toBeLessThan(64 * 1024 * 1024);
    });
  }
});

describe("attack 8: one roster member floods the replay cache with timestamps near the window's edge", () => {
  it("locks out nobody but itself: an honest machine's request is served afterwards", async () => {
    const ids = { home1: newIdentity("home1"), home2: newIdentity("home2"), eve: newIdentity("eve") };
    const roster = writeRoster([
      { name: "home1", owner: "home", identity: ids.home1 },
      { name: "home2", owner: "home", identity: ids.home2 },
      { name: "eve", owner: "eve", identity: ids.eve },
    ]);
    // Small bounds so the flood fills the whole cache in a test's time; the rule is the same.
    const replay = new ReplayCache(1_000, undefined, 100);
    const sidecar = await startReal({}, "127.0.0.1", {
      directory: directoryFor(roster.path, "home1", new Map()),
      replay,
    });
    try {
      const path = "/peer/capabilities";
      const capabilities = (who: keyof typeof ids, nowMs?: number) =>
        fetch(`${sidecar.base}${path}`, {
          headers: signRequest(
            { method: "GET", path, body: "", target: "home1" },
            { machine: who, privateKey: ids[who].privateKey },
            nowMs === undefined ? {} : { nowMs },
          ),
        });
      expect((await capabilities("home2")).status).toBe(200);
      let evesServed = 0;
      for (let i = 0; i < 1_100; i++) {
        const res = await capabilities("eve", Date.now() + 59_000);
        await res.arrayBuffer();
        if (res.status === 200) evesServed++;
      }
      expect(evesServed).toBeGreaterThan(100);
      expect(replay.size).toBeLessThanOrEqual(1_000);
      const honest = await capabilities("home2");
      expect(honest.status).toBe(200);
      expect(await honest.json()).toMatchObject({ machine: "home1" });
    } finally {
      await sidecar.close();
      roster.cleanup();
    }
  }, 60_000);
});
