import { generateKeyPairSync } from "node:crypto";
import { serve, type HttpBindings, type ServerType } from "@hono/node-server";
import { ReplayCache, publicKeyToBase64, signRequest } from "@potluck/peer";
import { Hono } from "hono";
import { memoryRoutes, peerAccess, peerMemoryRoutes, peerSignature, type MemoryStore } from "@potluck/sidecar/memory";

/**
 * The sidecar's memory surface on a real loopback port, behind the same middleware chain as the
 * sidecar (peer-access, then the shared Ed25519 peer-signature check on /peer/*), with peer
 * search opted in. The bench's own identity is the only key it trusts.
 */
export async function serveMemory(store: MemoryStore, machine: string): Promise<{ url: string; sign: Signer; close: () => Promise<void> }> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const caller = "bench";
  const callerKey = publicKeyToBase64(publicKey);
  const auth = peerSignature({ lookupKey: (name) => (name === caller ? callerKey : undefined), replay: new ReplayCache() });
  const app = new Hono<{ Bindings: HttpBindings }>()
    .use(peerAccess({ remoteAddress: (c) => (c.env as HttpBindings | undefined)?.incoming?.socket?.remoteAddress }))
    .route("/", memoryRoutes({ store, machine, peerSearchEnabled: () => true, setPeerSearchEnabled: () => undefined }))
    .route("/", peerMemoryRoutes({ store, machine, peerSearchEnabled: () => true, auth }));
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    sign: (request) => signRequest(request, { machine: caller, privateKey }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export type Signer = (request: { method: string; path: string; body: string }) => Record<string, string>;

/** POSTs JSON and returns the parsed answer; throws on a non-2xx so a broken path cannot look fast. */
export async function postJson(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<unknown> {
  const text = JSON.stringify(body);
  const res = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: text });
  const payload: unknown = await res.json();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(payload).slice(0, 200)}`);
  return payload;
}

/** A signed POST to /peer/memory/search, as a peer sidecar would send it. */
export function peerSearch(url: string, sign: Signer, body: unknown): Promise<unknown> {
  const path = "/peer/memory/search";
  return postJson(url, path, body, sign({ method: "POST", path, body: JSON.stringify(body) }));
}
