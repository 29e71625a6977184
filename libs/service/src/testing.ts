import { request } from "node:http";

/** What a flooding client saw: the answer, and how much it had sent when the answer came. */
export interface FloodResult {
  status: number;
  body: string;
  sentBytes: number;
}

/**
 * For attack tests: streams up to `totalBytes` of chunked body at a server, one reused 64 KiB chunk
 * at a time with backpressure (so the sender itself holds almost nothing), and stops as soon as an
 * answer arrives. A server that buffers whole bodies answers only after all of it; one that bounds
 * bodies while they stream answers within a few socket buffers of its limit.
 */
export function floodChunkedBody(
  port: number,
  options: { method: string; path: string; totalBytes: number; headers?: Record<string, string> },
): Promise<FloodResult> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  return new Promise((resolve, reject) => {
    let sentBytes = 0;
    let answered = false;
    const headers = { "transfer-encoding": "chunked", ...options.headers };
    const req = request({ host: "127.0.0.1", port, path: options.path, method: options.method, headers }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on("data", (part: Buffer) => parts.push(part));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString("utf8"), sentBytes });
        req.destroy();
      });
    });
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    const pump = () => {
      while (!answered && sentBytes < options.totalBytes) {
        sentBytes += chunk.length;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    pump();
  });
}
