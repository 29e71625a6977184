import { execFile } from "node:child_process";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { Diagnostics, ProbeError, type Probes } from "@potluck/diagnostics";
import { DiagnosticsReport, toErrorResponse, type RosterEntry } from "@potluck/protocol";
// Tools may drive apps (depConstraints allow type:app); Nx forbids app imports unconditionally (see
// tools/src/model/tiny.ts).
import { diagnosticsRoutes } from "@potluck/sidecar";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../src/lib/repo.js";

// `potluck doctor` as a user runs it: the real CLI process against a loopback sidecar surface
// (the real routes and check model; probes injected: linux's sidecar refuses connections) and
// against a port where nothing listens. The lab test runs it against real sidecars.
const potluck = join(repoRoot, "bin/potluck.mjs");
const key = (c: string) => `${c.repeat(43)}=` as RosterEntry["wireguardPublicKey"];
const entry = (name: string, meshIp: string, c: string): RosterEntry => ({
  id: name,
  name,
  owner: "home",
  meshIp,
  wireguardPublicKey: key(c),
  identityPublicKey: key(c) as unknown as RosterEntry["identityPublicKey"],
  endpoints: [],
  state: "online",
  lastHeartbeatAt: null,
  staleKey: false,
});

const probes: Probes = {
  local: { health: async () => ({ status: "ok", machine: "mac", uptimeS: 1 }) },
  roster: {
    list: async () => [entry("mac", "100.64.0.2", "m"), entry("linux", "100.64.0.3", "l")],
    lookup: async (name) =>
      name === "linux" ? entry("linux", "100.64.0.3", "l") : name === "mac" ? entry("mac", "100.64.0.2", "m") : null,
  },
  tunnel: {
    peers: async () => [
      {
        publicKey: key("l"),
        endpoint: "198.18.0.3:51820",
        allowedIps: [],
        latestHandshakeAtMs: Date.now() - 3_000,
        rxBytes: 1,
        txBytes: 1,
      },
    ],
  },
  peer: {
    nudge: async () => undefined,
    probe: async (target) => {
      if (target.name === "linux") throw new ProbeError("refused", "connection refused");
    },
    capabilities: async (target) => ({
      machine: target.name,
      owner: "home",
      version: "0.1.0",
      status: "ready",
      models: [{ id: "tiny", state: "ready", testModel: true }],
      embedder: null,
      memory: { peerSearchEnabled: false, records: 0 },
      hardware: { platform: "linux", arch: "x64", cpus: 2, memoryBytes: 1e9, gpu: null },
    }),
    firstToken: async (target) => ({ text: "hi", servedBy: target.name }),
  },
};

function doctor(args: string[], port: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [potluck, "doctor", ...args, "--port", String(port)],
      { cwd: repoRoot, timeout: 120_000, env: { ...process.env, POTLUCK_MACHINE: "mac" } },
      (error, stdout, stderr) => {
        resolve({ code: typeof error?.code === "number" ? error.code : error ? 1 : 0, stdout, stderr });
      },
    );
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("potluck doctor", () => {
  let server: ServerType;
  let port = 0;
  beforeAll(async () => {
    const app = new Hono().route(
      "/",
      diagnosticsRoutes(
        new Diagnostics({ from: "mac", interfaceName: "potluck0", localPort: 8321, peerPort: 8321, probes }),
      ),
    );
    app.onError((err, c) => {
      const { status, body } = toErrorResponse(err);
      return c.json(body, status as 400);
    });
    await new Promise<void>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  it("exits 0 for a path that can serve a prompt", async () => {
    const result = await doctor(["mac"], port);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("mac (this machine) [tiny]: can serve a prompt");
  });

  it("names the failing layer and its fix, waits out the confirmation, and exits 1", async () => {
    const result = await doctor(["linux"], port);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("mac → linux: cannot serve a prompt: data-plane failed");
    expect(result.stdout).toMatch(
      /\[FAIL\] Peer data plane +connection refused: linux is up but nothing listens on 100\.64\.0\.3:8321/,
    );
    expect(result.stdout).toContain("fix: start the sidecar on linux: potluck up");
    expect(result.stdout).toMatch(/\[ -- \] Capabilities +suppressed: Peer data plane failed \(connection-refused\)/);
    const json = await doctor(["linux", "--json"], port);
    expect(json.code).toBe(1);
    expect(DiagnosticsReport.parse(JSON.parse(json.stdout))).toMatchObject({
      usable: false,
      firstFailure: "data-plane",
    });
    const all = await doctor(["--json"], port);
    expect(all.code).toBe(1);
    expect(
      DiagnosticsReport.array()
        .parse(JSON.parse(all.stdout))
        .map((r) => [r.peer, r.usable]),
    ).toEqual([
      ["mac", true],
      ["linux", false],
    ]);
  });

  it("with no sidecar listening, the local layer fails with its fix and the rest is suppressed", async () => {
    const dead = await freePort();
    const result = await doctor(["linux"], dead);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`[FAIL] Local sidecar    nothing listens on mac's sidecar port ${dead}`);
    expect(result.stdout).toContain("fix: start the sidecar on mac: potluck up");
    expect(result.stdout.match(/\[ -- \]/g)).toHaveLength(8);
  });

  it("refuses bad input with a usage error", async () => {
    const result = await doctor(["Not_A_Name"], port);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("is not a machine name");
    const fix = await doctor(["linux", "--fix"], port);
    // Nothing to reapply for a refused connection: doctor says so and changes nothing.
    expect(fix.stderr).toContain("nothing here can be fixed automatically");
  });
});
