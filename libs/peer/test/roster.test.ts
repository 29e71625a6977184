import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Roster, RosterEntry } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  coordinatorRoster,
  fileRoster,
  generateIdentity,
  privateKeyFromPem,
  RosterUnavailableError,
  signCoordinatorAnswer,
} from "../src/index.js";

const hubIdentity = generateIdentity();
const hub = { privateKey: privateKeyFromPem(hubIdentity.privateKeyPem), publicKey: hubIdentity.publicKey };

function entry(name: string, owner = "home"): RosterEntry {
  const key = generateIdentity().publicKey as RosterEntry["identityPublicKey"];
  return {
    id: `id-${name}`,
    name,
    owner,
    meshIp: "100.64.0.2" as RosterEntry["meshIp"],
    wireguardPublicKey: key as unknown as RosterEntry["wireguardPublicKey"],
    identityPublicKey: key,
    endpoints: [],
    state: "online",
    lastHeartbeatAt: null,
    staleKey: false,
  };
}

const roster = (version: number, ...machines: RosterEntry[]): Roster => ({ version, machines });

describe("file roster", () => {
  const dir = mkdtempSync(join(tmpdir(), "potluck-peer-roster-"));
  const path = join(dir, "roster.json");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes the file with a modification time `ahead` seconds from now, so every write is a change. */
  const write = (value: Roster | string, ahead: number) => {
    writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
    utimesSync(path, new Date(), new Date(Date.now() + ahead * 1_000));
  };

  it("answers from the roster in hand within the interval, and follows a changed file after it", async () => {
    let clock = 1_000_000;
    write(roster(1, entry("mac"), entry("linux")), 1);
    const source = fileRoster({ path, limits: { recheckMs: 1_000 }, now: () => clock });
    expect((await source.entries()).map((e) => e.name)).toEqual(["mac", "linux"]);
    write(roster(2, entry("mac"), entry("linux", "work")), 2);
    clock += 999;
    expect((await source.lookup("linux"))?.owner).toBe("home");
    clock += 1;
    await source.entries(); // starts the check behind the answer
    await source.lookup("nobody"); // an unknown machine waits for that check
    expect((await source.lookup("linux"))?.owner).toBe("work");
  });

  it("looks again at once for a machine it does not know, by name or id", async () => {
    const clock = 1_000_000;
    write(roster(1, entry("mac")), 3);
    const source = fileRoster({ path, now: () => clock });
    expect(await source.lookup("late")).toBeUndefined();
    write(roster(2, entry("mac"), entry("late")), 4);
    expect((await source.lookup("late"))?.name).toBe("late");
    expect((await source.lookup("id-late"))?.name).toBe("late");
  });

  it("keeps the last good roster when the file breaks, and says why", async () => {
    let clock = 1_000_000;
    const logs: string[] = [];
    write(roster(1, entry("mac")), 5);
    const source = fileRoster({ path, log: (m) => logs.push(m), now: () => clock });
    expect(await source.entries()).toHaveLength(1);
    write("{ broken", 6);
    clock += 60_000;
    await source.lookup("nobody");
    expect(await source.entries()).toHaveLength(1);
    expect(logs.join("\n")).toMatch(/reading roster .*keeping the last good roster/);
  });

  it("with no roster ever read, says so instead of listing nobody", async () => {
    const source = fileRoster({ path: join(dir, "missing.json") });
    await expect(source.entries()).rejects.toBeInstanceOf(RosterUnavailableError);
    await expect(source.entries()).rejects.toThrow(/reading roster .*missing\.json/);
  });
});

describe("coordinator roster", () => {
  let current = roster(1, entry("mac"), entry("linux"));
  let fetches = 0;
  let server: Server;
  let url = "";
  beforeAll(async () => {
    server = createServer((req, res) => {
      fetches++;
      if (req.url !== "/v1/roster") return void res.writeHead(404).end();
      const text = JSON.stringify(current);
      res
        .writeHead(200, { "content-type": "application/json", ...signCoordinatorAnswer("/v1/roster", text, hub) })
        .end(text);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("is cached, re-read when told it changed, and early for a machine that just enrolled", async () => {
    let clock = 1_000_000;
    const source = coordinatorRoster({
      url,
      coordinatorKey: hub.publicKey,
      limits: { refreshMs: 60_000, earlyRefreshMinMs: 2_000 },
      now: () => clock,
    });
    expect(await source.entries()).toHaveLength(2);
    const before = fetches;
    await source.lookup("linux");
    await source.entries();
    expect(fetches).toBe(before);

    // A change announced: the next read starts a fresh fetch, and the one after sees it.
    current = roster(2, entry("mac"), entry("linux", "work"));
    source.invalidate();
    await source.entries();
    await source.lookup("nobody");
    expect((await source.lookup("linux"))?.owner).toBe("work");
    const afterChange = fetches;

    // An unknown name refreshes early, but at most once per earlyRefreshMinMs.
    current = roster(3, ...current.machines, entry("late"));
    clock += 2_000;
    expect((await source.lookup("late"))?.name).toBe("late");
    expect(await source.lookup("stranger")).toBeUndefined();
    expect(fetches).toBe(afterChange + 1);
  });
});

describe("coordinator roster signatures", () => {
  const good = roster(1, entry("mac"), entry("linux"));
  /** How the fake coordinator answers: signed by the hub, by another key, tampered after signing, or unsigned. */
  let mode: "signed" | "other-key" | "tampered" | "unsigned" = "signed";
  let server: Server;
  let url = "";
  beforeAll(async () => {
    const other = generateIdentity();
    server = createServer((_req, res) => {
      const text = JSON.stringify(good);
      const signer =
        mode === "other-key" ? { privateKey: privateKeyFromPem(other.privateKeyPem), publicKey: other.publicKey } : hub;
      const headers = mode === "unsigned" ? {} : signCoordinatorAnswer("/v1/roster", text, signer);
      // Tampered: the key of "linux" swapped for the attacker's after the hub signed the answer.
      const sent = mode === "tampered" ? text.replace(good.machines[1]!.identityPublicKey, other.publicKey) : text;
      res.writeHead(200, { "content-type": "application/json", ...headers }).end(sent);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("refuses an unsigned, wrongly signed or tampered roster, with no roster in hand and with one", async () => {
    for (const bad of ["unsigned", "other-key", "tampered"] as const) {
      mode = bad;
      const logs: string[] = [];
      const source = coordinatorRoster({ url, coordinatorKey: hub.publicKey, log: (m) => logs.push(m) });
      await expect(source.entries(), bad).rejects.toThrow(/refused/);
      expect(logs.join("\n")).toMatch(/refused/);
    }
    mode = "signed";
    const logs: string[] = [];
    const source = coordinatorRoster({
      url,
      coordinatorKey: hub.publicKey,
      limits: { refreshMs: 0 },
      log: (m) => logs.push(m),
    });
    expect((await source.lookup("linux"))?.identityPublicKey).toBe(good.machines[1]!.identityPublicKey);
    mode = "tampered";
    await source.entries(); // the refresh behind the answer is refused...
    for (let i = 0; i < 100 && !logs.some((l) => /refused/.test(l)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(logs.join("\n")).toMatch(/refused.*changed on the way.*keeping the last good roster/);
    expect((await source.lookup("linux"))?.identityPublicKey).toBe(good.machines[1]!.identityPublicKey); // ...and the good one kept
  });

  it("without a pinned key, pins the first signed answer's key and refuses another key after it", async () => {
    mode = "unsigned";
    await expect(coordinatorRoster({ url }).entries()).rejects.toThrow(/not signed/);
    mode = "signed";
    const logs: string[] = [];
    const source = coordinatorRoster({ url, limits: { refreshMs: 0 }, log: (m) => logs.push(m) });
    expect(await source.entries()).toHaveLength(2);
    expect(logs.join("\n")).toMatch(/pinned the coordinator key .* on first use/);
    mode = "other-key";
    await source.entries();
    for (let i = 0; i < 100 && !logs.some((l) => /another key/.test(l)); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(logs.join("\n")).toMatch(/another key than the coordinator's pinned one/);
  });
});

describe("coordinator roster from several coordinators", () => {
  /** Two coordinators of one hub (same key, same database); `up` says which answer at all. */
  const up = [true, true];
  const asked = [0, 0];
  const servers: Server[] = [];
  const urls: string[] = [];
  let current = roster(1, entry("mac"));
  beforeAll(async () => {
    for (const i of [0, 1]) {
      const server = createServer((req, res) => {
        asked[i]! += 1;
        // A coordinator that is down: its connection is refused by closing it unanswered.
        if (!up[i]) return void req.socket.destroy();
        const text = JSON.stringify(current);
        res
          .writeHead(200, { "content-type": "application/json", ...signCoordinatorAnswer("/v1/roster", text, hub) })
          .end(text);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      servers.push(server);
      urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
  });
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));

  it("reads from the next one when the one in use fails, stays there, and names every failure when all do", async () => {
    let clock = 1_000_000;
    const logs: string[] = [];
    const source = coordinatorRoster({
      url: urls,
      coordinatorKey: hub.publicKey,
      limits: { refreshMs: 1_000, earlyRefreshMinMs: 0 },
      now: () => clock,
      log: (m) => logs.push(m),
    });
    expect((await source.entries()).map((m) => m.name)).toEqual(["mac"]);
    expect(asked).toEqual([1, 0]);

    // The first coordinator dies; a machine enrolled meanwhile is found through the second.
    up[0] = false;
    current = roster(2, entry("mac"), entry("late"));
    expect((await source.lookup("late"))?.name).toBe("late");
    expect(asked).toEqual([2, 1]);
    expect(logs.join("\n")).toMatch(new RegExp(`${urls[0]} failed; now reading from ${urls[1]}`));

    // The one that answered is asked first from now on, even once the first is back.
    up[0] = true;
    source.invalidate();
    await source.lookup("nobody");
    expect(asked).toEqual([2, 2]);

    // Both down: the last good roster is kept and the log names each coordinator's failure.
    up[0] = false;
    up[1] = false;
    clock += 2_000;
    source.invalidate();
    await source.lookup("stranger");
    expect((await source.entries()).map((m) => m.name)).toEqual(["mac", "late"]);
    const last = logs.at(-1) ?? "";
    expect(last).toContain(`${urls[1]}: `);
    expect(last).toContain(`${urls[0]}: `);
    expect(last).toMatch(/keeping the last good roster/);
  });
});
