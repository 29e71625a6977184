import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publicKeyToBase64, signRequest } from "@potluck/peer";
import { serveApp } from "@potluck/service";
import { loadSidecarConfig, startSidecarService } from "@potluck/sidecar";
import type { MemoryStore } from "@potluck/sidecar/memory";

/**
 * The real sidecar (startSidecarService, as main.ts starts it) on a loopback port, serving this
 * store with peer search opted in and no model: the memory routes behind the same middleware
 * chain (peer-access, then the shared Ed25519 peer-signature check on /peer/*). The bench's own
 * identity is the only key it trusts. The store stays the caller's to close.
 */
export async function serveMemory(
  store: MemoryStore,
  machine: string,
): Promise<{ url: string; sign: Signer; close: () => Promise<void> }> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const caller = "bench";
  const callerKey = publicKeyToBase64(publicKey);
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-bench-sidecar-"));
  const config = loadSidecarConfig(
    {
      POTLUCK_MACHINE: machine,
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_PEER_MEMORY_ENABLED: "1",
      POTLUCK_CPU_PIN: "off",
      POTLUCK_OLLAMA_PORT: "0",
    },
    [],
  );
  const service = await startSidecarService(config, {
    nats: null,
    models: [],
    diagnostics: null,
    memory: { store, embedder: store.embedder, close: async () => undefined },
    directory: {
      peers: async () => [],
      signer: async (name) =>
        name === caller ? { machine: caller, owner: "home", identityPublicKey: callerKey } : undefined,
    },
  });
  const served = await serveApp(service.app, { port: 0, hostname: "127.0.0.1" });
  return {
    url: `http://127.0.0.1:${served.port}`,
    sign: (request) => signRequest({ ...request, target: machine }, { machine: caller, privateKey }),
    close: async () => {
      await served.close();
      await service.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type Signer = (request: { method: string; path: string; body: string }) => Record<string, string>;

/** POSTs JSON and returns the parsed answer; throws on a non-2xx so a broken path cannot look fast. */
export async function postJson(
  url: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const text = JSON.stringify(body);
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: text,
  });
  const payload: unknown = await res.json();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(payload).slice(0, 200)}`);
  return payload;
}

/** A signed POST to /peer/memory/search, as a peer sidecar would send it. */
export function peerSearch(url: string, sign: Signer, body: unknown): Promise<unknown> {
  const path = "/peer/memory/search";
  return postJson(url, path, body, sign({ method: "POST", path, body: JSON.stringify(body) }));
}
