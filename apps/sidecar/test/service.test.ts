import { createHook } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Heartbeat, HeartbeatTiming, MemoryStatus, subjectsFor } from "@potluck/protocol";
import { serveApp, type Logger } from "@potluck/service";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadSidecarConfig, startSidecarService, type SidecarConfig } from "../src/index.js";
import { noPeers } from "../src/peer/directory.js";

// The whole sidecar as main.ts starts it, in-process: real NATS on 127.0.0.1:4222 under a subject
// root of this file's own, a memory store in a scratch data dir, no model (the engine stays empty).
const natsUrl = "nats://127.0.0.1:4222";
const key = Buffer.alloc(32, 9).toString("base64");

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "potluck-service-"));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

function configFor(env: Record<string, string>): SidecarConfig {
  return loadSidecarConfig(
    {
      POTLUCK_MACHINE: "linux",
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_CPU_PIN: "off",
      POTLUCK_THREADS: "1",
      POTLUCK_OLLAMA_PORT: "0",
      ...env,
    },
    [],
  );
}

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const line = (obj: object | string, msg?: string) =>
    void lines.push(typeof obj === "string" ? obj : `${msg ?? ""} ${JSON.stringify(obj)}`);
  return { lines, info: line, warn: line, error: line };
}

/**
 * Records every timer, socket, pipe, watcher and child process created from now on; `leftOpen`
 * stops recording (the test's own waits are not counted) and gives those still open after a short
 * grace: what a closed service left behind.
 */
function handleTracker(): { leftOpen(): Promise<string[]> } {
  const open = new Map<number, string>();
  const kinds = /^(Timeout|Immediate|TCPWRAP|TCPSERVERWRAP|PIPEWRAP|PROCESSWRAP|FSEVENTWRAP|STATWATCHER|UDPWRAP)$/;
  let recording = true;
  const hook = createHook({
    init: (id, type) => void (recording && kinds.test(type) && open.set(id, type)),
    destroy: (id) => void open.delete(id),
  }).enable();
  return {
    async leftOpen() {
      recording = false;
      await until(() => open.size === 0, 2_000);
      hook.disable();
      return [...open.values()];
    },
  };
}

async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return done();
}

describe("startSidecarService", () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: natsUrl });
    // Loading the model runtime opens two process-wide pipes once, whoever loads it first; load it
    // before the handle count so only what the service itself opens is counted.
    await import("../src/inference/llama-engine.js");
  });
  afterAll(() => nc.drain());

  it("with a NATS connection injected, sends signed heartbeats on it and closes leaving no handle open", async () => {
    const prefix = `t${randomBytes(5).toString("hex")}`;
    const beats: Heartbeat[] = [];
    const sub = nc.subscribe(subjectsFor(prefix).heartbeat("linux"), {
      callback: (_error, msg) => void beats.push(Heartbeat.parse(msg.json())),
    });
    await nc.flush();
    const handles = handleTracker();
    // A coordinator is configured (that is what turns heartbeats on); the roster comes from no one.
    const config = configFor({ POTLUCK_NATS_PREFIX: prefix, POTLUCK_COORDINATOR_URL: "http://127.0.0.1:9" });
    const service = await startSidecarService(config, {
      nats: nc,
      models: [],
      directory: noPeers,
      readWireguardKey: async () => key,
    });
    try {
      await service.warm;
      expect(await until(() => beats.length >= 1, 2 * HeartbeatTiming.intervalMs + 5_000)).toBe(true);
      expect(beats[0]).toMatchObject({ machine: "linux", wireguardPublicKey: key, status: "ok" });
    } finally {
      await service.close();
      sub.unsubscribe();
    }
    // The injected connection is the caller's: still open, and nothing the service started lingers.
    expect(nc.isClosed()).toBe(false);
    expect(await handles.leftOpen()).toEqual([]);
  }, 30_000);

  it("memory share changes the service's setting, not process.env", async () => {
    const envBefore = process.env.POTLUCK_PEER_MEMORY_ENABLED;
    const service = await startSidecarService(configFor({}), { nats: null, models: [], directory: noPeers });
    const served = await serveApp(service.app, { port: 0, hostname: "127.0.0.1" });
    const base = `http://127.0.0.1:${served.port}`;
    try {
      expect(service.sharing.enabled()).toBe(false);
      // What `potluck memory share on` sends.
      const put = await fetch(`${base}/memory/peer-search`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ enabled: true }),
      });
      expect(await put.json()).toEqual({ enabled: true });
      expect(service.sharing.enabled()).toBe(true);
      expect(MemoryStatus.parse(await (await fetch(`${base}/memory/status`)).json()).peerSearchEnabled).toBe(true);
      expect(process.env.POTLUCK_PEER_MEMORY_ENABLED).toBe(envBefore);
    } finally {
      await served.close();
      await service.close();
    }
  });

  it("starts without NATS, saying once that it waits for it, and closes leaving no handle open", async () => {
    const log = recordingLog();
    const handles = handleTracker();
    const started = Date.now();
    const service = await startSidecarService(configFor({ POTLUCK_NATS_URL: "nats://127.0.0.1:1" }), {
      log,
      models: [],
      directory: noPeers,
      memory: null,
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    // Said once, though it has tried several times by now (the next line comes a minute later).
    expect(log.lines.filter((l) => l.includes("waiting for NATS at nats://127.0.0.1:1"))).toHaveLength(1);
    const health = await service.app.request("/health");
    expect(await health.json()).toMatchObject({ machine: "linux" });
    await service.close();
    expect(await handles.leftOpen()).toEqual([]);
  }, 20_000);
});
