import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { Roster, type RosterEntry } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// Tools may drive apps in-process (depConstraints allow type:app); Nx still flags app imports.
import { buildCoordinatorApp, CoordinatorState, openDatabase, type OpenedDatabase } from "@potluck/coordinator";
import { parseTtlS } from "../src/cli/commands/token.js";
import { coordinatorClient, ensureMachineKeys, joinMesh, parseWgDump, planPeers, readMeshState, rosterFile, wireguardPublicKeyOf, type Runner } from "../src/mesh/index.js";

// The machine side of `potluck join` without a tunnel: keys, enrollment against a real
// coordinator (in-process on PGlite, over real HTTP), saved state, and the peer plan. The tunnel
// itself is exercised in the lab (test/e2e/coordinator-mesh.test.ts).
const dir = mkdtempSync(join(tmpdir(), "potluck-mesh-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const noCommands: Runner = async (argv) => ({ code: 1, stdout: "", stderr: `not run in this test: ${argv.join(" ")}` });

describe("machine keys", () => {
  it("creates both keys 0600 and derives the same public key as `wg pubkey`", () => {
    const dataDir = join(dir, "keys");
    const keys = ensureMachineKeys(dataDir);
    for (const path of [keys.wireguardPrivateKeyPath, keys.identityPath]) expect(statSync(path).mode & 0o777).toBe(0o600);
    const priv = readFileSync(keys.wireguardPrivateKeyPath, "utf8").trim();
    const fromWg = execFileSync("wg", ["pubkey"], { input: `${priv}\n`, encoding: "utf8" }).trim();
    expect(keys.wireguardPublicKey).toBe(fromWg);
    const genkey = execFileSync("wg", ["genkey"], { encoding: "utf8" }).trim();
    expect(wireguardPublicKeyOf(genkey)).toBe(execFileSync("wg", ["pubkey"], { input: genkey, encoding: "utf8" }).trim());
    expect(ensureMachineKeys(dataDir)).toEqual(keys); // stable across runs
  });
});

describe("peer plan", () => {
  const key = (c: string) => `${c.repeat(42)}A=`;
  const entry = (name: string, id: string, k: string, ip: string, endpoints = [`198.18.0.${ip.split(".")[3]}:51820`]): RosterEntry =>
    ({ id, name, owner: "home", meshIp: ip, wireguardPublicKey: k, identityPublicKey: k, endpoints, state: "online", lastHeartbeatAt: null, staleKey: false }) as RosterEntry;
  const roster = [entry("mac", "1", key("a"), "100.64.0.1"), entry("linux", "2", key("b"), "100.64.0.2"), entry("win", "3", key("c"), "100.64.0.3")];

  it("adds every other machine with its /32 and endpoint, and removes peers not on the roster", () => {
    const dump = parseWgDump(`priv\tpub\t51820\toff\n${key("b")}\t(none)\t198.18.0.2:51820\t100.64.0.2/32\t1700000000\t1\t2\t25\n${key("z")}\t(none)\t(none)\t100.64.0.9/32\t0\t0\t0\toff\n`);
    expect(dump.listenPort).toBe(51820);
    const plan = planPeers(dump.peers, roster, "1");
    expect(plan.set).toEqual([{ publicKey: key("c"), allowedIp: "100.64.0.3/32", endpoint: "198.18.0.3:51820", name: "win" }]);
    expect(plan.remove).toEqual([key("z")]);
  });

  it("changes nothing when potluck0 already matches, and keeps a roamed endpoint", () => {
    const peers = [
      { publicKey: key("b"), endpoint: "10.9.9.9:4000", allowedIps: ["100.64.0.2/32"], latestHandshakeS: 1 },
      { publicKey: key("c"), endpoint: "198.18.0.3:51820", allowedIps: ["100.64.0.3/32"], latestHandshakeS: 1 },
    ];
    expect(planPeers(peers, roster, "1")).toEqual({ set: [], remove: [] });
  });

  it("fixes a peer whose allowed IP is wrong (its machine was re-addressed)", () => {
    const peers = [{ publicKey: key("b"), endpoint: "198.18.0.2:51820", allowedIps: ["100.64.0.7/32"], latestHandshakeS: 0 }];
    expect(planPeers(peers, roster, "1").set.map((p) => [p.name, p.allowedIp, p.endpoint])).toEqual([["linux", "100.64.0.2/32", null], ["win", "100.64.0.3/32", "198.18.0.3:51820"]]);
  });
});

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
    const state = await CoordinatorState.open({ db: database.db });
    const app = buildCoordinatorApp({ startedAt: Date.now(), state, adminSecret });
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
