import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RosterEntry } from "@potluck/protocol";
import { afterAll, describe, expect, it } from "vitest";
import {
  ensureMachineKeys,
  loadMeshConfig,
  parseWgDump,
  planPeers,
  runMeshAgent,
  wireguardPublicKeyOf,
} from "../src/index.js";

// The machine side without a coordinator or a tunnel: keys, the peer plan and the agent's flags.
// Enrollment against a real coordinator is tools/test/mesh.test.ts (apps never import apps); the
// tunnel itself is exercised in the lab (tools/test/e2e/coordinator-mesh.test.ts).
const dir = mkdtempSync(join(tmpdir(), "potluck-mesh-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("machine keys", () => {
  it("creates both keys 0600 and derives the same public key as `wg pubkey`", () => {
    const dataDir = join(dir, "keys");
    const keys = ensureMachineKeys(dataDir);
    for (const path of [keys.wireguardPrivateKeyPath, keys.identityPath])
      expect(statSync(path).mode & 0o777).toBe(0o600);
    const priv = readFileSync(keys.wireguardPrivateKeyPath, "utf8").trim();
    const fromWg = execFileSync("wg", ["pubkey"], { input: `${priv}\n`, encoding: "utf8" }).trim();
    expect(keys.wireguardPublicKey).toBe(fromWg);
    const genkey = execFileSync("wg", ["genkey"], { encoding: "utf8" }).trim();
    expect(wireguardPublicKeyOf(genkey)).toBe(
      execFileSync("wg", ["pubkey"], { input: genkey, encoding: "utf8" }).trim(),
    );
    expect(ensureMachineKeys(dataDir)).toEqual(keys); // stable across runs
  });
});

describe("peer plan", () => {
  const key = (c: string) => `${c.repeat(42)}A=`;
  const entry = (
    name: string,
    id: string,
    k: string,
    ip: string,
    endpoints = [`198.18.0.${ip.split(".")[3]}:51820`],
  ): RosterEntry =>
    ({
      id,
      name,
      owner: "home",
      meshIp: ip,
      wireguardPublicKey: k,
      identityPublicKey: k,
      endpoints,
      state: "online",
      lastHeartbeatAt: null,
      staleKey: false,
    }) as RosterEntry;
  const roster = [
    entry("mac", "1", key("a"), "100.64.0.1"),
    entry("linux", "2", key("b"), "100.64.0.2"),
    entry("win", "3", key("c"), "100.64.0.3"),
  ];

  it("adds every other machine with its /32 and endpoint, and removes peers not on the roster", () => {
    const dump = parseWgDump(
      `priv\tpub\t51820\toff\n${key("b")}\t(none)\t198.18.0.2:51820\t100.64.0.2/32\t1700000000\t1\t2\t25\n${key("z")}\t(none)\t(none)\t100.64.0.9/32\t0\t0\t0\toff\n`,
    );
    expect(dump.listenPort).toBe(51820);
    const plan = planPeers(dump.peers, roster, "1");
    expect(plan.set).toEqual([
      { publicKey: key("c"), allowedIp: "100.64.0.3/32", endpoint: "198.18.0.3:51820", name: "win" },
    ]);
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
    const peers = [
      { publicKey: key("b"), endpoint: "198.18.0.2:51820", allowedIps: ["100.64.0.7/32"], latestHandshakeS: 0 },
    ];
    expect(planPeers(peers, roster, "1").set.map((p) => [p.name, p.allowedIp, p.endpoint])).toEqual([
      ["linux", "100.64.0.2/32", null],
      ["win", "100.64.0.3/32", "198.18.0.3:51820"],
    ]);
  });
});

describe("potluck-mesh flags", () => {
  it("takes the data dir and NATS from flags over the environment", () => {
    const env = {
      POTLUCK_DATA_DIR: "/var/lib/potluck",
      POTLUCK_NATS_URL: "nats://env:4222",
      POTLUCK_NATS_PREFIX: "home",
    };
    expect(loadMeshConfig(env, [])).toEqual({
      dataDir: "/var/lib/potluck",
      natsUrl: "nats://env:4222",
      natsPrefix: "home",
      help: false,
    });
    expect(loadMeshConfig(env, ["--data-dir", "/srv/p", "--nats=nats://flag:4222"])).toMatchObject({
      dataDir: "/srv/p",
      natsUrl: "nats://flag:4222",
    });
  });

  it("refuses a misspelt flag, naming it, instead of starting with a default", () => {
    expect(() => loadMeshConfig({}, ["--data-dri", "/srv/p"])).toThrow(
      /unknown flag --data-dri \(did you mean --data-dir\?\)/,
    );
    expect(() => loadMeshConfig({}, ["extra"])).toThrow(/unexpected argument extra/);
  });
});

describe("potluck-mesh agent", () => {
  it("refuses a data dir that never joined, saying how to join, and creates nothing there", async () => {
    const dataDir = join(dir, "never-joined");
    const run = async () => ({ code: 1, stdout: "", stderr: "no command may run" });
    await expect(
      runMeshAgent({ dataDir, log: () => undefined, signal: new AbortController().signal, run }),
    ).rejects.toThrow(/has not joined a mesh yet: run potluck join COORDINATOR_URL TOKEN/);
    expect(existsSync(dataDir)).toBe(false);
  });
});
