import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MeshState } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLab,
  httpFrom,
  type Hub,
  type Lab,
  type LabHost,
  pollUntil,
  serveHttp,
  startHub,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import { relayModel, sidecarPort, startSidecar } from "../../bench/relay/lab.js";

// A phone's WireGuard app, for real: the hub host runs the coordinator (naming its own machine
// "hub" as the hub spokes tunnel to) and joins its own mesh with the linux backend; the "phone"
// host enrolls with `potluck join --mesh external` and gets only a wg-quick config. That config,
// through `wg-quick strip` and `wg setconf` onto a wireguard-go interface this test makes in the
// phone's namespace, must carry HTTP both ways between the phone and the hub over the mesh. Then
// a Linux "box" joins: the phone, whose only peer is the hub, reaches it through the hub's
// forwarding, while the hub refuses to carry the phone's traffic anywhere off the mesh. Last, a
// real prompt: the phone's sidecar (no model) asks, the box's (the tiny TEST model) answers, both
// ways through the hub over the phone's wg-quick config.
const potluck = join(repoRoot, "bin/potluck.mjs");
/** Not the sidecar port (8321): the last test runs real sidecars on these hosts. */
const httpPort = 8471;
/** Several node processes per host on a loaded 2-core machine. */
const meshUpMs = 180_000;
const dev = "wgphone";

let lab: Lab;
let hub: Hub;
let phone: LabHost;
let phoneIp = "";
let hubKey = "";

beforeAll(async () => {
  lab = await createLab({ hosts: ["phone", "box"], mesh: false, extraHosts: ["hub"] });
  hub = await startHub(lab, "hub", { coordinatorEnv: { POTLUCK_HUB_MACHINE: "hub" } });
  phone = lab.host("phone");
}, 300_000);

afterAll(async () => {
  await lab?.teardown();
}, 120_000);

describe("potluck join --mesh external in the lab", () => {
  it("writes a config that wg-quick strip and wg setconf load, and that carries HTTP to and from the hub", async () => {
    await hub.join(hub.host, "hub");
    const created = await hub.host.exec(
      [
        process.execPath,
        potluck,
        "token",
        "create",
        "--data-dir",
        hub.dataDir(hub.host),
        "--coordinator",
        "http://127.0.0.1:8320",
      ],
      { env: hub.env(), timeoutMs: 120_000 },
    );
    expect(created.code, created.stderr).toBe(0);
    // wg-quick takes the interface name from the file name: <name>.conf, 15 characters at most.
    const configOut = join(phone.runDir, `${dev}.conf`);
    const phoneData = hub.dataDir(phone);
    const joined = await phone.exec(
      [
        process.execPath,
        potluck,
        "join",
        hub.coordinatorUrl,
        created.stdout.trim(),
        "--name",
        "phone",
        "--data-dir",
        phoneData,
        "--mesh",
        "external",
        "--config-out",
        configOut,
      ],
      { env: hub.env(), timeoutMs: 120_000 },
    );
    expect(joined.code, joined.stderr).toBe(0);
    const state = MeshState.parse(JSON.parse(readFileSync(join(phoneData, "mesh", "state.json"), "utf8")));
    expect(state.backend).toBe("external");
    const roster = await hub.roster();
    expect(roster.hub).toBe("hub");
    const hubEntry = roster.machines.find((m) => m.name === "hub");
    expect(hubEntry?.endpoints).toEqual([`${hub.host.underlayIp}:51820`]);

    // The user's side: a WireGuard interface (wireguard-go, as on a phone) and the config loaded
    // the way wg-quick itself loads it.
    const wg = phone.spawn("wireguard-go", ["wireguard-go", "-f", dev], {
      env: { WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" },
    });
    const socket = await pollUntil(async () => (await phone.exec(["wg", "show", dev])).code === 0, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    expect(socket, wg.output()).toBe(true);
    const up = await phone.exec([
      "bash",
      "-c",
      [
        `wg-quick strip "$1" > "$1.stripped"`,
        `wg setconf ${dev} "$1.stripped"`,
        `ip address add ${state.meshIp}/32 dev ${dev}`,
        `ip link set ${dev} mtu ${state.mtu} up`,
        // wg-quick routes each AllowedIPs range into the interface; here that is the whole mesh.
        `ip route add 100.64.0.0/10 dev ${dev}`,
      ].join(" && "),
      "bash",
      configOut,
    ]);
    expect(up.code, up.stderr).toBe(0);
    const shown = await phone.exec(["wg", "show", dev, "dump"]);
    expect(shown.stdout).toContain(
      `${hubEntry?.wireguardPublicKey}\t(none)\t${hub.host.underlayIp}:51820\t100.64.0.0/10`,
    );

    await serveHttp(hub.host, httpPort);
    await serveHttp(phone, httpPort);
    const toHub = await pollUntil(
      async () => (await httpFrom(phone, `http://${hubEntry?.meshIp}:${httpPort}/`, { timeoutMs: 5_000 })).ok,
      { timeoutMs: meshUpMs, intervalMs: 500 },
    );
    expect(toHub, `HTTP phone -> hub over ${dev}`).toBe(true);
    // The hub's linux backend added the phone as a peer from the roster; its endpoint came from the handshake.
    const fromHub = await pollUntil(
      async () => (await httpFrom(hub.host, `http://${state.meshIp}:${httpPort}/`, { timeoutMs: 5_000 })).ok,
      { timeoutMs: meshUpMs, intervalMs: 500 },
    );
    expect(fromHub, "HTTP hub -> phone over potluck0").toBe(true);
    phoneIp = state.meshIp;
    hubKey = hubEntry?.wireguardPublicKey ?? "";
  }, 600_000);

  it("forwards the phone to another roster machine through the hub, and nowhere off the mesh", async () => {
    expect(phoneIp).not.toBe("");
    const box = lab.host("box");
    await hub.join(box);
    const boxEntry = (await hub.roster()).machines.find((m) => m.name === "box");
    expect(boxEntry).toBeDefined();
    await serveHttp(box, httpPort);
    const viaHub = await pollUntil(
      async () => (await httpFrom(phone, `http://${boxEntry?.meshIp}:${httpPort}/`, { timeoutMs: 5_000 })).ok,
      { timeoutMs: meshUpMs, intervalMs: 500 },
    );
    expect(viaHub, "HTTP phone -> box through the hub").toBe(true);
    // The box has no peer of the phone's: the phone's address rides on its hub peer.
    const boxPeers = await box.exec(["wg", "show", "potluck0", "allowed-ips"]);
    const lines = boxPeers.stdout.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]?.startsWith(`${hubKey}\t`)).toBe(true);
    expect(lines[0]).toContain(`${phoneIp}/32`);

    // A phone that tries to use the hub as a way onto the LAN (the box's LAN address through the
    // tunnel) gets nowhere: the hub's drop rule counts its packets.
    const dropped = async () => {
      const chain = await hub.host.exec(["nft", "list", "chain", "inet", "potluck", "forward"]);
      return Number(/iifname "potluck0" counter packets (\d+)/.exec(chain.stdout)?.[1] ?? Number.NaN);
    };
    const droppedBefore = await dropped();
    expect(droppedBefore).not.toBeNaN();
    const boxLan = box.underlayIp;
    const hijack = await phone.exec([
      "bash",
      "-c",
      `wg set ${dev} peer "$1" allowed-ips 100.64.0.0/10,${boxLan}/32 && ip route add ${boxLan}/32 dev ${dev}`,
      "bash",
      hubKey,
    ]);
    expect(hijack.code, hijack.stderr).toBe(0);
    const offMesh = await httpFrom(phone, `http://${boxLan}:${httpPort}/`, { timeoutMs: 3_000 });
    expect(offMesh.ok).toBe(false);
    expect(await dropped()).toBeGreaterThan(droppedBefore);
    // Still on the mesh: the same phone reaches the box's mesh address.
    expect((await httpFrom(phone, `http://${boxEntry?.meshIp}:${httpPort}/`, { timeoutMs: 5_000 })).ok).toBe(true);
  }, 600_000);

  it("carries a real prompt: the phone's sidecar asks, the box's sidecar answers through the hub", async () => {
    expect(phoneIp).not.toBe("");
    const phone = lab.host("phone");
    const box = lab.host("box");
    const noModels = join(phone.runDir, "no-models");
    mkdirSync(noModels, { recursive: true });
    await Promise.all([startSidecar(hub, box, {}), startSidecar(hub, phone, { POTLUCK_MODELS: noModels })]);
    let last = "";
    const served = await pollUntil(
      async () => {
        const res = await phone.exec(
          [process.execPath, potluck, "ask", "--model", relayModel, "--max-tokens", "8", "Hello from the phone"],
          {
            cwd: repoRoot,
            env: hub.env({ POTLUCK_PORT: String(sidecarPort), POTLUCK_MACHINE: "phone" }),
            timeoutMs: 180_000,
          },
        );
        last = res.stdout + res.stderr;
        return res.code === 0 && /served by box/.test(res.stdout);
      },
      { timeoutMs: meshUpMs, intervalMs: 2_000 },
    );
    expect(served, last).toBe(true);
    // The prompt went over the phone's own tunnel: its one peer, the hub, carried traffic both ways.
    const transfer = await phone.exec(["wg", "show", dev, "transfer"]);
    const [, rx = "0", tx = "0"] = transfer.stdout.trim().split(/\s+/);
    expect(Number(rx)).toBeGreaterThan(0);
    expect(Number(tx)).toBeGreaterThan(0);
  }, 600_000);
});
