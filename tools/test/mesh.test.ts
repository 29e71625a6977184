import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { Roster } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// Tools may drive apps in-process (depConstraints allow type:app); Nx still flags app imports.
import { buildCoordinatorApp, CoordinatorState, loadOrCreateCoordinatorKey, openDatabase, type OpenedDatabase } from "@potluck/coordinator";
import { coordinatorKeyFingerprint } from "@potluck/peer";
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
  beforeAll(async () => {
    database = await openDatabase({ dataDir: join(dir, "coordinator") });
    const signingKey = loadOrCreateCoordinatorKey(join(dir, "coordinator"));
    const state = await CoordinatorState.open({ db: database.db, keyFingerprint: coordinatorKeyFingerprint(signingKey.publicKey) });
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
    const first = await joinMesh({ coordinatorUrl: url, token, dataDir, name: "closet", owner: "home", endpoint: "198.18.0.9:51820", interface: false, run: noCommands });
    expect(first.enrolled).toBe(true);
    expect(first.state).toMatchObject({ name: "closet", meshIp: "100.64.0.1", prefixLength: 10, mtu: 1280, interfaceName: "potluck0", endpoints: ["198.18.0.9:51820"] });
    expect(readMeshState(dataDir)).toEqual(first.state);
    expect(Roster.parse(JSON.parse(readFileSync(rosterFile(dataDir), "utf8"))).machines.map((m) => m.name)).toEqual(["closet"]);
    const roster = await client.roster();
    expect(roster.machines[0]?.wireguardPublicKey).toBe(first.keys.wireguardPublicKey);
    expect(roster.machines[0]?.identityPublicKey).toBe(first.keys.identityPublicKey);
    // The token is spent, yet a second run works: it re-uses the saved enrollment.
    const second = await joinMesh({ coordinatorUrl: url, token, dataDir, name: "closet", interface: false, run: noCommands });
    expect(second.enrolled).toBe(false);
    expect(second.state).toEqual(first.state);
    // A service restarting after boot: no URL, no token, the saved enrollment.
    const restarted = await joinMesh({ dataDir, interface: false, run: noCommands });
    expect(restarted).toMatchObject({ enrolled: false, state: first.state });
    await expect(joinMesh({ dataDir: join(dir, "never-joined"), interface: false, run: noCommands })).rejects.toThrow(/has not joined a mesh yet/);
  });

  it("fails with the coordinator's reason for a spent token", async () => {
    const client = coordinatorClient(url, { adminSecret });
    const { token } = await client.createToken({});
    await joinMesh({ coordinatorUrl: url, token, dataDir: join(dir, "a"), name: "first", interface: false, run: noCommands });
    await expect(joinMesh({ coordinatorUrl: url, token, dataDir: join(dir, "b"), name: "second", interface: false, run: noCommands })).rejects.toThrow(/already used.*token_used/);
  });
});
