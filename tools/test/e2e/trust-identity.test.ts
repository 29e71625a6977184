import { join } from "node:path";
import type { Roster } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, pollUntil, startHub, waitForOutput, type Hub, type Lab } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// Identity across owners over the real lab LAN: a hub of owner "home", a home machine, a machine
// of owner "eve" that joins with the token the hub's admin made for her, and a home machine whose
// join passes through eve (a LAN attacker rewriting the coordinator's answers). Every refusal
// leaves the roster byte for byte as it was.
const potluck = join(repoRoot, "bin/potluck.mjs");
const proxyPort = 8399;

let lab: Lab;
let hub: Hub;

beforeAll(async () => {
  lab = await createLab({ hosts: ["mac", "eve", "linux"], mesh: false, extraHosts: ["hub"] });
  hub = await startHub(lab);
  await hub.join(lab.host("mac"));
}, 300_000);

afterAll(async () => {
  await lab?.teardown();
}, 120_000);

/** Membership and keys, without liveness (which moves with time, not with an attack). */
function rosterBytes(roster: Roster): string {
  return JSON.stringify({
    version: roster.version,
    machines: roster.machines.map(({ state: _s, lastHeartbeatAt: _l, staleKey: _k, ...rest }) => rest),
  });
}

async function tokenFor(owner?: string): Promise<string> {
  const argv = [
    process.execPath,
    potluck,
    "token",
    "create",
    "--data-dir",
    hub.dataDir(hub.host),
    "--coordinator",
    "http://127.0.0.1:8320",
    ...(owner === undefined ? [] : ["--owner", owner]),
  ];
  const created = await hub.host.exec(argv, { env: hub.env(), timeoutMs: 120_000 });
  expect(created.code, created.stderr).toBe(0);
  return created.stdout.trim();
}

function joinFrom(hostName: string, url: string, token: string, extra: string[] = []) {
  const host = lab.host(hostName);
  return host.exec(
    [
      process.execPath,
      potluck,
      "join",
      url,
      token,
      "--name",
      hostName,
      "--data-dir",
      hub.dataDir(host),
      "--no-interface",
      ...extra,
    ],
    { env: hub.env(), timeoutMs: 120_000 },
  );
}

describe("attack 3 in the lab: eve cannot join as the household's owner", () => {
  it("refuses eve's join as owner home with her token, writing nothing, then enrolls her as eve", async () => {
    const token = await tokenFor("eve");
    const before = rosterBytes(await hub.roster());
    const attack = await joinFrom("eve", hub.coordinatorUrl, token, ["--owner", "home"]);
    expect(attack.code).not.toBe(0);
    expect(attack.stderr).toMatch(/issued for owner "eve".*owner_mismatch/);
    expect(rosterBytes(await hub.roster())).toBe(before);
    const honest = await joinFrom("eve", hub.coordinatorUrl, token);
    expect(honest.code, honest.stderr).toBe(0);
    expect((await hub.roster()).machines.find((m) => m.name === "eve")?.owner).toBe("eve");
  }, 300_000);
});

describe("attack 10 in the lab: eve in the middle of linux's join on the LAN", () => {
  it("linux refuses the coordinator's answers rewritten by eve, and saves no mesh state", async () => {
    // eve relays to the hub and swaps every identity key in the answers for one of her own.
    const script = `
      const http = require("node:http");
      http.createServer((req, res) => {
        const body = [];
        req.on("data", (c) => body.push(c)).on("end", () => {
          const up = http.request(${JSON.stringify(hub.coordinatorUrl)} + req.url, { method: req.method, headers: req.headers }, (a) => {
            const parts = [];
            a.on("data", (c) => parts.push(c)).on("end", () => {
              const text = Buffer.concat(parts).toString().replace(/"identityPublicKey":"[^"]+"/g, '"identityPublicKey":"' + "A".repeat(43) + '="');
              const headers = { ...a.headers };
              delete headers["content-length"];
              res.writeHead(a.statusCode, headers).end(text);
            });
          });
          up.end(Buffer.concat(body));
        });
      }).listen(${proxyPort}, "0.0.0.0", () => console.log("relaying"));`;
    const relay = lab.host("eve").spawn("relay", [process.execPath, "-e", script]);
    await waitForOutput(relay, /relaying/, "eve's relay", 60_000);
    const token = await tokenFor();
    const before = rosterBytes(await hub.roster());
    const viaEve = await joinFrom("linux", `http://${lab.host("eve").underlayIp}:${proxyPort}`, token);
    expect(viaEve.code).not.toBe(0);
    expect(viaEve.stderr).toMatch(/refused the answer.*changed on the way/);
    const state = await lab
      .host("linux")
      .exec(["test", "-e", join(hub.dataDir(lab.host("linux")), "mesh", "state.json")]);
    expect(state.code).not.toBe(0);
    // The coordinator did enroll linux (the token reached it through eve); what eve could not do
    // is change the keys linux believes. The roster gained linux with linux's own key, nothing else.
    const after = await pollUntil(async () => (await hub.roster()).machines.some((m) => m.name === "linux"), {
      timeoutMs: 10_000,
      intervalMs: 200,
    });
    expect(after).toBe(true);
    const roster = await hub.roster();
    expect(roster.machines.map((m) => m.identityPublicKey)).not.toContain(`${"A".repeat(43)}=`);
    expect(
      rosterBytes({
        ...roster,
        version: roster.version - 1,
        machines: roster.machines.filter((m) => m.name !== "linux"),
      }),
    ).toBe(before);
  }, 300_000);
});
