import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { connectNats } from "../src/nats.js";
import { recordingLog } from "./support.js";

// A list of servers in POTLUCK_NATS_URL: the connection starts on whichever answers and, when
// that one is killed, moves to another on its own and says so. Two standalone servers (no
// cluster) are enough for the client's side; tools/test/e2e/cluster.test.ts runs a real cluster.
const servers: ChildProcess[] = [];

afterAll(() => {
  for (const s of servers) s.kill("SIGKILL");
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startServer(port: number): Promise<ChildProcess> {
  const proc = spawn("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  servers.push(proc);
  let out = "";
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 200 && !out.includes("Server is ready"); i++) await new Promise((r) => setTimeout(r, 50));
  if (!out.includes("Server is ready")) throw new Error(`nats-server on ${port}: ${out}`);
  return proc;
}

describe("connectNats with a list of servers", () => {
  it("connects past a dead first entry and moves to the other server when its own is killed", async () => {
    const dead = await freePort();
    const [portA, portB] = [await freePort(), await freePort()];
    const byPort = new Map([
      [portA, await startServer(portA)],
      [portB, await startServer(portB)],
    ]);
    const log = recordingLog();
    const url = `nats://s3cret@127.0.0.1:${dead},nats://127.0.0.1:${portA},nats://127.0.0.1:${portB}`;
    // The servers demand nothing; the token only shows that the list's credentials are never logged.
    const nc = await connectNats({ url, name: "t", log, attemptsMax: 3 });
    try {
      const first = Number(nc.getServer().split(":").pop());
      expect([portA, portB]).toContain(first);
      byPort.get(first)?.kill("SIGKILL");
      const other = first === portA ? portB : portA;
      for (let i = 0; i < 200 && !log.lines.some((l) => l.msg.endsWith("reconnected")); i++)
        await new Promise((r) => setTimeout(r, 50));
      const reconnected = log.lines.find((l) => l.msg.endsWith("reconnected"));
      expect(reconnected?.obj).toEqual({ server: `127.0.0.1:${other}` });
      expect(log.lines.some((l) => l.level === "warn" && l.msg.endsWith("disconnected; reconnecting"))).toBe(true);
      // The connection works on the other server: a request to itself is answered.
      const sub = nc.subscribe("t.echo", { callback: (_e, m) => void m.respond(m.data) });
      expect((await nc.request("t.echo", "hi", { timeout: 5_000 })).string()).toBe("hi");
      sub.unsubscribe();
      expect(JSON.stringify(log.lines)).not.toContain("s3cret");
    } finally {
      await nc.close();
    }
  }, 30_000);
});
