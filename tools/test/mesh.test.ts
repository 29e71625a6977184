import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { Roster } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// Tools may drive apps in-process (depConstraints allow type:app); Nx still flags app imports.
import {
  buildCoordinatorApp,
  CoordinatorState,
  loadOrCreateCoordinatorKey,
  openDatabase,
  type OpenedDatabase,
} from "@potluck/coordinator";
import { coordinatorKeyFingerprint, generateIdentity } from "@potluck/peer";
import { coordinatorClient, joinMesh, readMeshState, rosterFile, type Runner } from "@potluck/mesh";
import { parseTtlS } from "../src/cli/commands/token.js";

// `potluck join` against a real coordinator (in-process on PGlite, over real HTTP): enrollment,
// saved state and roster. Keys and the peer plan are apps/mesh/test; the tunnel itself is
// exercised in the lab (test/e2e/coordinator-mesh.test.ts).
const dir = mkdtempSync(join(tmpdir(), "potluck-mesh-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const noCommands: Runner = async (argv) => ({ code: 1, stdout: "", stderr: `not run in this test: ${argv.join(" ")}` });

describe("potluck token --ttl", () => {
  it("reads seconds and units", () => {
    expect(parseTtlS("90")).toBe(90);
    expect(parseTtlS("30m")).toBe(1800);
    expect(parseTtlS("2d")).toBe(172_800);
    expect(() => parseTtlS("soon")).toThrow(/--ttl/);
  });
});

describe("joinMesh against a real coordinator", () => {
  let database: OpenedDatabase;
  let server: ServerType;
  let url: string;
  const adminSecret = "mesh-test-admin-secret-000";
  let signingKey: ReturnType<typeof loadOrCreateCoordinatorKey>;
  beforeAll(async () => {
    database = await openDatabase({ dataDir: join(dir, "coordinator") });
    signingKey = loadOrCreateCoordinatorKey(join(dir, "coordinator"));
    const state = await CoordinatorState.open({
      db: database.db,
      keyFingerprint: coordinatorKeyFingerprint(signingKey.publicKey),
    });
    const app = buildCoordinatorApp({ startedAt: Date.now(), state, adminSecret, signingKey });
    server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((r) => server.once("listening", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await database?.close();
  });

  it("enrolls once, saves state and roster, and re-uses the enrollment on a second run", async () => {
    const client = coordinatorClient(url, { adminSecret });
    const { token } = await client.createToken({});
    const dataDir = join(dir, "machine");
    const first = await joinMesh({
      coordinatorUrl: url,
      token,
      dataDir,
      name: "closet",
      owner: "home",
      endpoint: "198.18.0.9:51820",
      interface: false,
      run: noCommands,
    });
    expect(first.enrolled).toBe(true);
    expect(first.state).toMatchObject({
      name: "closet",
      meshIp: "100.64.0.1",
      prefixLength: 10,
      mtu: 1280,
      interfaceName: "potluck0",
      endpoints: ["198.18.0.9:51820"],
    });
    expect(readMeshState(dataDir)).toEqual(first.state);
    expect(Roster.parse(JSON.parse(readFileSync(rosterFile(dataDir), "utf8"))).machines.map((m) => m.name)).toEqual([
      "closet",
    ]);
    const roster = await client.roster();
    expect(roster.machines[0]?.wireguardPublicKey).toBe(first.keys.wireguardPublicKey);
    expect(roster.machines[0]?.identityPublicKey).toBe(first.keys.identityPublicKey);
    // The token is spent, yet a second run works: it re-uses the saved enrollment.
    const second = await joinMesh({
      coordinatorUrl: url,
      token,
      dataDir,
      name: "closet",
      interface: false,
      run: noCommands,
    });
    expect(second.enrolled).toBe(false);
    expect(second.state).toEqual(first.state);
    // A service restarting after boot: no URL, no token, the saved enrollment.
    const restarted = await joinMesh({ dataDir, interface: false, run: noCommands });
    expect(restarted).toMatchObject({ enrolled: false, state: first.state });
    await expect(joinMesh({ dataDir: join(dir, "never-joined"), interface: false, run: noCommands })).rejects.toThrow(
      /has not joined a mesh yet/,
    );
  });

  it("restarts with the saved roster when the coordinator does not answer (a hub's reboot), and says so", async () => {
    const client = coordinatorClient(url, { adminSecret });
    const { token } = await client.createToken({});
    const dataDir = join(dir, "rebooted");
    const first = await joinMesh({
      coordinatorUrl: url,
      token,
      dataDir,
      name: "hubby",
      interface: false,
      run: noCommands,
    });
    // The same enrollment, its coordinator now unreachable: a port that was just free, closed again.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const statePath = join(dataDir, "mesh", "state.json");
    writeFileSync(statePath, JSON.stringify({ ...first.state, coordinatorUrl: deadUrl }));
    const warnings: string[] = [];
    const restarted = await joinMesh({
      dataDir,
      interface: false,
      run: noCommands,
      effects: { warn: (message) => warnings.push(message) },
    });
    expect(restarted.roster).toEqual(first.roster);
    expect(warnings).toEqual([
      `reading roster: coordinator ${deadUrl} unreachable: connect ECONNREFUSED ${deadUrl.slice(7)}: bringing potluck0 up with the roster saved at ${rosterFile(dataDir)}`,
    ]);
    // Without a saved roster there is nothing to come up with: the coordinator's error, as before.
    rmSync(rosterFile(dataDir));
    await expect(joinMesh({ dataDir, interface: false, run: noCommands })).rejects.toThrow(/unreachable/);
  });

  it("fails with the coordinator's reason for a spent token", async () => {
    const client = coordinatorClient(url, { adminSecret });
    const { token } = await client.createToken({});
    await joinMesh({
      coordinatorUrl: url,
      token,
      dataDir: join(dir, "a"),
      name: "first",
      interface: false,
      run: noCommands,
    });
    await expect(
      joinMesh({
        coordinatorUrl: url,
        token,
        dataDir: join(dir, "b"),
        name: "second",
        interface: false,
        run: noCommands,
      }),
    ).rejects.toThrow(/already used.*token_used/);
  });

  it("takes the owner from the token: a guest token joins as the guest, and a join asking for the host's owner is refused", async () => {
    const client = coordinatorClient(url, { adminSecret });
    const { token, owner } = await client.createToken({ owner: "eve" });
    expect(owner).toBe("eve");
    await expect(
      joinMesh({
        coordinatorUrl: url,
        token,
        dataDir: join(dir, "eve-1"),
        name: "eve-1",
        owner: "home",
        interface: false,
        run: noCommands,
      }),
    ).rejects.toThrow(/issued for owner "eve".*owner_mismatch/);
    expect(readMeshState(join(dir, "eve-1"))).toBeUndefined();
    const joined = await joinMesh({
      coordinatorUrl: url,
      token,
      dataDir: join(dir, "eve-1"),
      name: "eve-1",
      interface: false,
      run: noCommands,
    });
    expect(joined.state).toMatchObject({ owner: "eve", coordinatorKey: signingKey.publicKey });
  });

  it("refuses an enrollment answer or a roster rewritten on the LAN, and pins the key the token named", async () => {
    const attacker = generateIdentity();
    // A man in the middle that swaps every identity key in the coordinator's answers for its own.
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req
        .on("data", (c: Buffer) => chunks.push(c))
        .on("end", () => {
          const upstream = httpRequest(
            `${url}${req.url ?? "/"}`,
            { method: req.method, headers: req.headers },
            (answer) => {
              const parts: Buffer[] = [];
              answer
                .on("data", (c: Buffer) => parts.push(c))
                .on("end", () => {
                  const text = Buffer.concat(parts)
                    .toString("utf8")
                    .replace(/"identityPublicKey":"[^"]+"/g, `"identityPublicKey":"${attacker.publicKey}"`);
                  const headers = { ...answer.headers };
                  delete headers["content-length"];
                  res.writeHead(answer.statusCode ?? 502, headers).end(text);
                });
            },
          );
          upstream.end(Buffer.concat(chunks));
        });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const client = coordinatorClient(url, { adminSecret });
      const { token } = await client.createToken({});
      const dataDir = join(dir, "mitm");
      await expect(
        joinMesh({ coordinatorUrl: proxyUrl, token, dataDir, name: "mitm", interface: false, run: noCommands }),
      ).rejects.toThrow(/refused the answer.*changed on the way/);
      expect(readMeshState(dataDir)).toBeUndefined();
      // Pinned, a roster through the attacker is refused; straight from the hub it is accepted.
      await expect(coordinatorClient(proxyUrl, { coordinatorKey: signingKey.publicKey }).roster()).rejects.toThrow(
        /refused the answer/,
      );
      expect(
        (await coordinatorClient(url, { coordinatorKey: signingKey.publicKey }).roster()).machines.map(
          (m) => m.identityPublicKey,
        ),
      ).not.toContain(attacker.publicKey);
      await expect(coordinatorClient(url, { coordinatorKey: attacker.publicKey }).roster()).rejects.toThrow(
        /another key/,
      );
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
