// Tiny HTTP server and client run INSIDE a lab host (plain node, no tsx: starts fast under load).
//   node lab-http.mjs serve PORT [BIND]      GET /          → "ok <bind>"   POST * → {"received": N}
//                                            GET /bytes/N   → N bytes of "x" (N ≤ 16 MiB)
//   node lab-http.mjs request URL [--method M] [--body-bytes N] [--timeout-ms N]
//        prints one JSON line {ok, status, bytes, error, code}; exit 0 on 2xx, 1 otherwise.
import { createServer, request } from "node:http";

const bodyBytesMax = 16 * 1024 * 1024;
const [mode, ...args] = process.argv.slice(2);

function flag(name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

if (mode === "serve") {
  const port = Number(args[0] ?? 0);
  const bind = args[1] ?? "0.0.0.0";
  const server = createServer((req, res) => {
    let received = 0;
    req.on("data", (chunk) => (received += chunk.length));
    req.on("end", () => {
      const match = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
      if (req.method === "GET" && match) {
        const n = Math.min(Number(match[1]), bodyBytesMax);
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n }).end("x".repeat(n));
      } else if (req.method === "GET") {
        res.writeHead(200, { "content-type": "text/plain" }).end(`ok ${bind}\n`);
      } else {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ received }));
      }
    });
  });
  server.listen(port, bind, () => process.stdout.write(`listening ${bind}:${server.address().port}\n`));
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else if (mode === "request") {
  const url = args[0];
  const method = flag("method", "GET");
  const bodyBytes = Math.min(Number(flag("body-bytes", "0")), bodyBytesMax);
  const timeoutMs = Number(flag("timeout-ms", "5000"));
  const done = (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(result.ok ? 0 : 1);
  };
  const req = request(url, { method, headers: bodyBytes > 0 ? { "content-length": bodyBytes } : {} }, (res) => {
    let bytes = 0;
    res.on("data", (chunk) => (bytes += chunk.length));
    res.on("end", () => done({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, bytes }));
    res.on("error", (error) => done({ ok: false, error: error.message, code: error.code ?? "ERROR" }));
  });
  // One deadline for the whole exchange, so a black-holed body can't hang forever.
  const timer = setTimeout(() => {
    req.destroy();
    done({ ok: false, error: `no complete answer within ${timeoutMs} ms`, code: "TIMEOUT" });
  }, timeoutMs);
  timer.unref();
  req.on("error", (error) => done({ ok: false, error: error.message, code: error.code ?? "ERROR" }));
  req.end(bodyBytes > 0 ? Buffer.alloc(bodyBytes, "y") : undefined);
} else {
  process.stderr.write(
    "usage: lab-http.mjs serve PORT [BIND] | request URL [--method M] [--body-bytes N] [--timeout-ms N]\n",
  );
  process.exit(2);
}
