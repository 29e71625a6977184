import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, utimesSync, writeFileSync } from "node:fs";
import type { Roster } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity, privateKeyFromPem, RosterLimits, signCoordinatorAnswer } from "@potluck/peer";
import { coordinatorDirectory, rosterFileDirectory } from "../src/peer/directory.js";
import { newIdentity, writeRoster } from "./harness.js";

const ids = { mac: newIdentity("mac"), linux: newIdentity("linux"), late: newIdentity("late") };
const hubIdentity = generateIdentity();
const hub = { privateKey: privateKeyFromPem(hubIdentity.privateKeyPem), publicKey: hubIdentity.publicKey };
const signedRoster = (text: string) => signCoordinatorAnswer("/v1/roster", text, hub);

describe("roster file directory", () => {
  it("lists other machines with mesh URLs, finds signers by name only, and follows edits", async () => {
    const roster = writeRoster([
      { name: "mac", owner: "home", identity: ids.mac },
      { name: "linux", owner: "home", identity: ids.linux },
    ]);
    try {
      const dir = rosterFileDirectory({ path: roster.path, self: "mac", peerPort: 8321 });
      expect(await dir.peers()).toEqual([
        { machine: "linux", owner: "home", url: "http://100.64.0.3:8321", identityPublicKey: ids.linux.publicKey },
      ]);
      expect((await dir.signer("linux"))?.identityPublicKey).toBe(ids.linux.publicKey);
      // A signature names its machine by name: the roster id is not an alias for it.
      expect(await dir.signer("id-linux")).toBeUndefined();
      expect((await dir.signer("late"))?.identityPublicKey).toBeUndefined();
      const next = writeRoster([
        { name: "mac", owner: "home", identity: ids.mac },
        { name: "late", owner: "home", identity: ids.late },
      ]);
      // Same path, new content and a new modification time: the next lookup sees it.
      writeFileSync(roster.path, readFileSync(next.path));
      utimesSync(roster.path, new Date(), new Date(Date.now() + 5_000));
      next.cleanup();
      expect((await dir.signer("late"))?.identityPublicKey).toBe(ids.late.publicKey);
    } finally {
      roster.cleanup();
    }
  });

  it("checks the file at most once per recheck interval, but at once for an unknown signer", async () => {
    const roster = writeRoster([
      { name: "mac", owner: "home", identity: ids.mac },
      { name: "linux", owner: "home", identity: ids.linux },
    ]);
    let clock = 1_000_000;
    try {
      const dir = rosterFileDirectory({
        path: roster.path,
        self: "mac",
        peerPort: 8321,
        limits: { recheckMs: 1_000 },
        now: () => clock,
      });
      expect((await dir.peers()).map((p) => p.owner)).toEqual(["home"]);
      const next = writeRoster([
        { name: "mac", owner: "home", identity: ids.mac },
        { name: "linux", owner: "work", identity: ids.linux },
        { name: "late", owner: "home", identity: ids.late },
      ]);
      writeFileSync(roster.path, readFileSync(next.path));
      utimesSync(roster.path, new Date(), new Date(Date.now() + 5_000));
      next.cleanup();
      clock += 999;
      // Within the interval a known machine is answered from the roster in hand, without a stat...
      expect((await dir.peers()).map((p) => p.owner)).toEqual(["home"]);
      // ...but a signer the roster in hand does not know makes it look again now.
      expect((await dir.signer("late"))?.identityPublicKey).toBe(ids.late.publicKey);
      expect((await dir.peers()).find((p) => p.machine === "linux")?.owner).toBe("work");
    } finally {
      roster.cleanup();
    }
  });

  it("answers from the roster in hand while the interval's file check runs, then from the new file", async () => {
    const roster = writeRoster([
      { name: "mac", owner: "home", identity: ids.mac },
      { name: "linux", owner: "home", identity: ids.linux },
    ]);
    let clock = 1_000_000;
    try {
      const dir = rosterFileDirectory({
        path: roster.path,
        self: "mac",
        peerPort: 8321,
        limits: { recheckMs: 1_000 },
        now: () => clock,
      });
      expect((await dir.peers()).map((p) => p.owner)).toEqual(["home"]);
      const next = writeRoster([
        { name: "mac", owner: "home", identity: ids.mac },
        { name: "linux", owner: "work", identity: ids.linux },
      ]);
      writeFileSync(roster.path, readFileSync(next.path));
      utimesSync(roster.path, new Date(), new Date(Date.now() + 5_000));
      next.cleanup();
      clock += 1_000;
      // The interval has passed: this lookup starts the check but does not wait for the disk.
      expect((await dir.peers()).map((p) => p.owner)).toEqual(["home"]);
      (await dir.signer("nobody"))?.identityPublicKey; // joins that check
      expect((await dir.peers()).map((p) => p.owner)).toEqual(["work"]);
    } finally {
      roster.cleanup();
    }
  });

  it("keeps the last good roster when the file turns invalid", async () => {
    const roster = writeRoster([
      { name: "mac", owner: "home", identity: ids.mac },
      { name: "linux", owner: "home", identity: ids.linux },
    ]);
    const logs: string[] = [];
    let clock = 1_000_000;
    try {
      const dir = rosterFileDirectory({
        path: roster.path,
        self: "mac",
        peerPort: 8321,
        log: (m) => logs.push(m),
        now: () => clock,
      });
      expect(await dir.peers()).toHaveLength(1);
      writeFileSync(roster.path, "{ broken");
      utimesSync(roster.path, new Date(), new Date(Date.now() + 10_000));
      clock += RosterLimits.fileRecheckMs;
      expect(await dir.peers()).toHaveLength(1);
      (await dir.signer("nobody"))?.identityPublicKey; // an unknown signer waits for the file check the line above started
      expect(await dir.peers()).toHaveLength(1);
      expect(logs.join("\n")).toMatch(/reading roster .*keeping the last good roster/);
    } finally {
      roster.cleanup();
    }
  });
});

describe("coordinator roster directory", () => {
  let roster: Roster;
  let fetches = 0;
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const file = writeRoster([
      { name: "mac", owner: "home", identity: ids.mac },
      { name: "linux", owner: "home", identity: ids.linux },
    ]);
    roster = JSON.parse(readFileSync(file.path, "utf8")) as Roster;
    file.cleanup();
    server = createServer((req, res) => {
      fetches++;
      if (req.url !== "/v1/roster") return void res.writeHead(404).end();
      const text = JSON.stringify(roster);
      res.writeHead(200, { "content-type": "application/json", ...signedRoster(text) }).end(text);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("reads GET /v1/roster, caches it, and refreshes early for a machine that just enrolled", async () => {
    const dir = coordinatorDirectory({
      url,
      coordinatorKey: hub.publicKey,
      self: "mac",
      peerPort: 8321,
      limits: { refreshMs: 60_000, earlyRefreshMinMs: 0 },
    });
    expect((await dir.peers()).map((p) => p.machine)).toEqual(["linux"]);
    const before = fetches;
    expect((await dir.signer("linux"))?.identityPublicKey).toBe(ids.linux.publicKey);
    expect(fetches).toBe(before); // served from the cache
    roster = {
      ...roster,
      version: roster.version + 1,
      machines: [
        ...roster.machines,
        { ...roster.machines[1]!, id: "id-late", name: "late", identityPublicKey: ids.late.publicKey as never },
      ],
    };
    expect((await dir.signer("late"))?.identityPublicKey).toBe(ids.late.publicKey);
    expect(fetches).toBe(before + 1);
  });

  it("keeps the last good roster while the coordinator is unreachable", async () => {
    const logs: string[] = [];
    const dir = coordinatorDirectory({
      url,
      coordinatorKey: hub.publicKey,
      self: "mac",
      peerPort: 8321,
      log: (m) => logs.push(m),
      limits: { refreshMs: 0 },
    });
    expect(await dir.peers()).not.toHaveLength(0);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    expect((await dir.signer("linux"))?.identityPublicKey).toBe(ids.linux.publicKey);
    // The refresh runs behind the answer; its failure is logged once it has failed.
    for (let i = 0; i < 100 && !logs.some((l) => /keeping the last good roster/.test(l)); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(logs.join("\n")).toMatch(/reading roster from .*keeping the last good roster/);
    server.listen(0, "127.0.0.1");
  });

  it("answers from the roster in hand while a refresh hangs, with one fetch in flight", async () => {
    let asked = 0;
    const hanging = createServer((req) => {
      asked++;
      if (asked > 1) return; // the refresh: never answered (a path that eats large packets)
      const text = JSON.stringify(roster);
      const signature = Object.entries(signedRoster(text))
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join("");
      req.socket.end(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${signature}connection: close\r\n\r\n${text}`,
      );
    });
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    try {
      const dir = coordinatorDirectory({
        url: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`,
        coordinatorKey: hub.publicKey,
        self: "mac",
        peerPort: 8321,
        limits: { refreshMs: 0, fetchTimeoutMs: 5_000 },
      });
      expect((await dir.signer("linux"))?.identityPublicKey).toBe(ids.linux.publicKey); // the first fetch: nothing in hand yet
      const started = Date.now();
      const answers = await Promise.all([
        dir.signer("linux").then((s) => s?.identityPublicKey),
        dir.signer("mac").then((s) => s?.identityPublicKey),
        dir.peers(),
      ]);
      expect(Date.now() - started).toBeLessThan(1_000); // not the 5 s fetch timeout
      expect(answers[0]).toBe(ids.linux.publicKey);
      expect(answers[2].map((p) => p.machine)).toContain("linux");
      await new Promise((r) => setTimeout(r, 100));
      expect(asked).toBe(2); // three stale reads, one refresh
    } finally {
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
  });
});
