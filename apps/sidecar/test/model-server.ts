import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ServedRequest {
  method: string;
  path: string;
  range: string | undefined;
  /** This response was cut off after `cutAfterBytes`. */
  cut?: boolean;
}

/**
 * A loopback HTTP server serving files by path the way model hosts do: HEAD and GET, byte ranges,
 * and optionally Hugging Face's `X-Linked-ETag` (the SHA-256 of an LFS file). `cutAfterBytes`
 * drops the connection of the first body response once that many bytes have gone out.
 */
export async function startModelServer(files: Map<string, { body: Buffer; sha256?: string }>) {
  const requests: ServedRequest[] = [];
  let cutAfterBytes: number | undefined;
  let bytesSent = 0;
  let goDown = false;
  let down = false;
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    requests.push({ method: req.method ?? "", path, range: req.headers.range });
    if (down) {
      req.socket.destroy();
      return;
    }
    const file = files.get(path);
    if (file === undefined) {
      res.writeHead(404).end("not found");
      return;
    }
    const headers: Record<string, string> = { "accept-ranges": "bytes", "content-type": "application/octet-stream" };
    if (file.sha256 !== undefined) headers["x-linked-etag"] = `"${file.sha256}"`;
    const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = match === null ? 0 : Number(match[1]);
    const end =
      match === null || match[2] === "" ? file.body.length - 1 : Math.min(Number(match[2]), file.body.length - 1);
    const body = file.body.subarray(start, end + 1);
    headers["content-length"] = String(body.length);
    if (match !== null) headers["content-range"] = `bytes ${start}-${end}/${file.body.length}`;
    res.writeHead(match === null ? 200 : 206, headers);
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const cut = cutAfterBytes;
    if (cut !== undefined && match !== null && body.length > cut) {
      cutAfterBytes = undefined;
      requests[requests.length - 1]!.cut = true;
      down = goDown;
      res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
      bytesSent += cut;
      return;
    }
    bytesSent += body.length;
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    bytesSent: () => bytesSent,
    /** Cuts the next ranged body after `bytes`; `thenDown`: every request after that is dropped too. */
    cutNextAfter: (bytes: number, thenDown = false) => {
      cutAfterBytes = bytes;
      goDown = thenDown;
    },
    /** Serves again after going down. */
    up: () => void (down = false),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
