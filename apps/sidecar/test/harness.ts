import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Roster } from "@potluck/protocol";
import type { Logger } from "@potluck/service";
import { loadSidecarConfig } from "../src/config.js";
import { EngineError, type GenerateRequest, type InferenceEngine } from "../src/inference/engine.js";
import { noPeers, rosterFileDirectory, type PeerDirectory } from "../src/peer/directory.js";
import { identityFrom, type Identity } from "../src/peer/identity.js";
import { startSidecarService, type SidecarService } from "../src/service.js";
import type { HoldChecker } from "../src/usage/hold-check.js";
import type { UsageJob, UsagePublisher } from "../src/usage/publisher.js";

/** A usage publisher that keeps what it was given, for tests that do not need NATS; job n sits at "sequence" n. */
export function recordingUsage(): UsagePublisher & { jobs: UsageJob[] } {
  const jobs: UsageJob[] = [];
  return { jobs, publishJob: async (job) => ({ seq: jobs.push(job) }) };
}

/**
 * For sidecars without NATS in tests whose subject is not the hold check: every hold is taken at
 * its word (no stream to read it from). The real check (usage/hold-check.ts) has its own tests,
 * and the lab suites run it against JetStream.
 */
export const uncheckedHolds: HoldChecker = { check: async () => ({ ok: true, amount: Number.MAX_SAFE_INTEGER }) };

export function newIdentity(
  machine: string,
): Identity & { privateKey: ReturnType<typeof generateKeyPairSync>["privateKey"] } {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { ...identityFrom(machine, privateKey), privateKey };
}

export interface RunningSidecar {
  machine: string;
  url: string;
  /** Its POTLUCK_DATA_DIR (memory store, shares), removed by close(). */
  dataDir: string;
  server: ServerType;
  service: SidecarService;
  close(): Promise<void>;
}

/**
 * A real listening sidecar on 127.0.0.1:<random port>, started by the same startSidecarService as
 * main.ts. Without `nats` it runs with no NATS at all and records usage; the raw node server is
 * kept so tests can watch its connections or cut them mid-stream.
 */
export async function startSidecar(options: {
  machine: string;
  owner?: string;
  engine: InferenceEngine;
  identity: Identity;
  directory?: PeerDirectory;
  usage?: UsagePublisher;
  /** Without NATS: how holds of other owners' jobs are checked (default: taken at their word). */
  holds?: HoldChecker;
  /** Usage events go to JetStream on this connection, under this subject root (the caller drains it). */
  nats?: { connection: NatsConnection; prefix: string };
  /** Open a real memory store in its data directory, as main.ts does (default: no memory API). */
  memory?: boolean;
  /** POTLUCK_OLLAMA_PORT; default 0 (off), so no test takes 11434 from the machine's own Ollama. */
  ollamaPort?: number;
  log?: Logger;
}): Promise<RunningSidecar> {
  const { machine, owner = "home", engine, identity, directory = noPeers } = options;
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-sidecar-"));
  const env = {
    POTLUCK_MACHINE: machine,
    POTLUCK_OWNER: owner,
    POTLUCK_DATA_DIR: dataDir,
    POTLUCK_BIND: "127.0.0.1",
    POTLUCK_CPU_PIN: "off",
    POTLUCK_NATS_PREFIX: options.nats?.prefix,
    POTLUCK_OLLAMA_PORT: String(options.ollamaPort ?? 0),
  };
  const config = loadSidecarConfig(env, []);
  const nats =
    options.nats === undefined
      ? { nats: null, usage: options.usage ?? recordingUsage(), holds: options.holds ?? uncheckedHolds }
      : { nats: options.nats.connection, ...(options.usage === undefined ? {} : { usage: options.usage }) };
  const service = await startSidecarService(config, {
    engine,
    identity,
    directory,
    models: [],
    diagnostics: null,
    version: "test",
    ...(options.log === undefined ? {} : { log: options.log }),
    ...nats,
    ...(options.memory === true ? {} : { memory: null }),
  });
  await service.warm;
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: service.app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    machine,
    url: `http://127.0.0.1:${port}`,
    dataDir,
    server,
    service,
    close: async () => {
      await new Promise<void>((resolve) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      });
      await service.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A roster file in the coordinator's schema; mesh IPs are placeholders, URLs come from overrides. */
export function writeRoster(machines: Array<{ name: string; owner: string; identity: Identity }>): {
  path: string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), "potluck-roster-"));
  const roster: Roster = {
    version: 1,
    machines: machines.map((m, i) => ({
      id: `id-${m.name}`,
      name: m.name,
      owner: m.owner,
      meshIp: `100.64.0.${i + 2}`,
      wireguardPublicKey: m.identity.publicKey as Roster["machines"][number]["wireguardPublicKey"],
      identityPublicKey: m.identity.publicKey as Roster["machines"][number]["identityPublicKey"],
      endpoints: [],
      state: "online",
      lastHeartbeatAt: null,
      staleKey: false,
    })),
  };
  const path = join(dir, "roster.json");
  writeFileSync(path, JSON.stringify(roster));
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `urls` may be filled in after the sidecars start listening (ports are random). */
export function directoryFor(rosterPath: string, self: string, urls: ReadonlyMap<string, string>): PeerDirectory {
  return rosterFileDirectory({ path: rosterPath, self, peerPort: 8321, urlOverrides: urls });
}

/** `inner`, with every generation request that reaches it pushed onto `seen` (the engine's own boundary). */
export function recordingEngine(inner: InferenceEngine, seen: GenerateRequest[]): InferenceEngine {
  return {
    load: (s) => inner.load(s),
    unload: (id, options) => inner.unload(id, options),
    list: () => inner.list(),
    state: (id) => inner.state(id),
    embed: (id, inputs, signal) => inner.embed(id, inputs, signal),
    close: () => inner.close(),
    stream(id, request) {
      seen.push(request);
      return inner.stream(id, request);
    },
  };
}

/**
 * Wraps a real engine so a prompt containing HOLD_MARKER stops after its first token until
 * `release()`: a test can kill the serving host mid-stream without racing the generator. One
 * containing REFUSE_MARKER is refused before its first token (the router's failover case).
 */
export const HOLD_MARKER = "[hold-after-first-token]";
/** A prompt containing this is refused before its first token, as a full queue would be. */
export const REFUSE_MARKER = "[refuse-before-first-token]";
export function holdingEngine(inner: InferenceEngine): InferenceEngine & { release(): void } {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return {
    load: (s) => inner.load(s),
    unload: (id) => inner.unload(id),
    list: () => inner.list(),
    state: (id) => inner.state(id),
    embed: (id, inputs, signal) => inner.embed(id, inputs, signal),
    close: () => inner.close(),
    release: () => release(),
    async *stream(id, request) {
      if (request.messages.some((m) => m.content.includes(REFUSE_MARKER)))
        throw new EngineError(503, "queue_full", `model ${id} is busy: its request queue is full (test refusal)`);
      const hold = request.messages.some((m) => m.content.includes(HOLD_MARKER));
      let first = true;
      for await (const event of inner.stream(id, request)) {
        yield event;
        if (hold && first)
          await Promise.race([
            gate,
            new Promise((resolve) => request.signal?.addEventListener("abort", resolve, { once: true })),
          ]);
        first = false;
      }
    },
  };
}
