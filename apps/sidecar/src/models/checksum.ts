import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** A SHA-256 as the manifest and the flag spell it: 64 lowercase hex digits. */
export const sha256Pattern = /^[0-9a-f]{64}$/;

/** The SHA-256 of a file, streamed (a model is gigabytes). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Redirects followed when asking for the stated checksum (Hugging Face sends one, to its CDN). */
const redirectsMax = 5;
const statedTimeoutMs = 10_000;

/**
 * The SHA-256 the server states for a file, if any: Hugging Face's `X-Linked-ETag` on an LFS
 * file's redirect (the LFS object id is its SHA-256), or an RFC 9530 `Repr-Digest: sha-256=:…:`.
 * Asked with HEAD before the download; a server that states nothing (or cannot be asked) gives null.
 */
export async function statedSha256(url: string, signal?: AbortSignal): Promise<string | null> {
  let current = url;
  const timeout = AbortSignal.timeout(statedTimeoutMs);
  const both = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  for (let hop = 0; hop <= redirectsMax; hop++) {
    const res = await fetch(current, { method: "HEAD", redirect: "manual", signal: both }).catch(() => undefined);
    if (res === undefined) return null;
    const found = fromHeaders(res.headers);
    if (found !== null) return found;
    const location = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || location === null) return null;
    current = new URL(location, current).href;
  }
  return null;
}

function fromHeaders(headers: Headers): string | null {
  const linked = headers.get("x-linked-etag")?.replace(/^W\//, "").replace(/"/g, "").toLowerCase();
  if (linked !== undefined && sha256Pattern.test(linked)) return linked;
  const digest = /sha-256=:([A-Za-z0-9+/=]+):/.exec(headers.get("repr-digest") ?? "")?.[1];
  if (digest !== undefined) {
    const hex = Buffer.from(digest, "base64").toString("hex");
    if (sha256Pattern.test(hex)) return hex;
  }
  return null;
}
