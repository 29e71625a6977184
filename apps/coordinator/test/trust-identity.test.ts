import { randomBytes } from "node:crypto";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CoordinatorAnswerHeaders, type Roster } from "@potluck/protocol";
import {
  coordinatorKeyFingerprint,
  coordinatorRoster,
  fingerprintOfToken,
  generateIdentity,
  verifyCoordinatorAnswer,
} from "@potluck/peer";
import { serveApp, type ServedApp } from "@potluck/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCoordinatorConfig } from "../src/config.js";
import { startCoordinatorService, type CoordinatorService } from "../src/service.js";
import { adminSecret, createTestDatabase, randomKey, tempDir } from "./support.js";

// Attacks on identity against the whole coordinator (real PostgreSQL, real NATS, real HTTP):
// a guest choosing its owner (attack 3), and a LAN attacker rewriting the roster or the
// enrollment answer on its way to a machine (attack 10). The roster is compared byte for byte.
const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";
const dir = tempDir("potluck-coord-trust-");
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let service: CoordinatorService;
let served: ServedApp;
let url = "";

beforeAll(async () => {
  db = await createTestDatabase();
  const config = loadCoordinatorConfig(
    {
      POTLUCK_DATA_DIR: dir.path,
      DATABASE_URL: db.url,
      POTLUCK_NATS_URL: natsUrl,
      POTLUCK_NATS_PREFIX: `t${randomBytes(5).toString("hex")}`,
      POTLUCK_COORDINATOR_ADMIN_SECRET: adminSecret,
      POTLUCK_OWNER: "home",
    },
    [],
  );
  service = await startCoordinatorService(config);
  served = await serveApp(service.app, { port: 0, hostname: "127.0.0.1" });
  url = `http://127.0.0.1:${served.port}`;
});
afterAll(async () => {
  await served?.close();
  await service?.close();
  await db?.drop();
  dir.remove();
});

async function createToken(body: object): Promise<{ token: string; owner: string }> {
  const res = await fetch(`${url}/v1/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminSecret}` },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { token: string; owner: string };
}

function enroll(base: string, body: object): Promise<Response> {
  const full = {
    wireguardPublicKey: randomKey(),
    identityPublicKey: generateIdentity().publicKey,
    endpoints: ["198.18.0.2:51820"],
    ...body,
  };
  return fetch(`${base}/v1/enroll`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(full),
  });
}

/** The roster exactly as served, liveness fields left out (they move with time, not with an attack). */
async function rosterBytes(): Promise<string> {
  const roster = (await (await fetch(`${url}/v1/roster`)).json()) as Roster;
  return JSON.stringify(
    roster.machines
      .map(({ state: _s, lastHeartbeatAt: _l, ...rest }) => rest)
      .concat([{ version: roster.version } as never]),
  );
}

describe("attack 3: a guest cannot choose its owner", () => {
  it("binds the hub's owner by default and the admin's choice otherwise; a join asking for another owner is refused and writes nothing", async () => {
    const home = await createToken({});
    expect(home.owner).toBe("home");
    const honest = await enroll(url, { token: home.token, name: "mac" });
    expect(honest.status).toBe(201);
    expect(((await honest.json()) as { machine: { owner: string } }).machine.owner).toBe("home");

    const guest = await createToken({ owner: "eve", reusable: true });
    expect(guest.owner).toBe("eve");
    const before = await rosterBytes();
    const attack = await enroll(url, { token: guest.token, name: "eve-laptop", owner: "home" });
    expect(attack.status).toBe(403);
    expect(await attack.json()).toMatchObject({ error: { code: "owner_mismatch", field: "owner" } });
    expect(await rosterBytes()).toBe(before);

    // The token was not spent by the refused join; eve joins as eve (naming no owner, or her own).
    const joined = await enroll(url, { token: guest.token, name: "eve-laptop" });
    expect(joined.status).toBe(201);
    expect(((await joined.json()) as { machine: { owner: string } }).machine.owner).toBe("eve");
    expect((await enroll(url, { token: guest.token, name: "eve-desk", owner: "eve" })).status).toBe(201);
  });
});

describe("attack 10: a LAN attacker rewriting coordinator answers", () => {
  let proxy: Server;
  let proxyUrl = "";
  const attacker = generateIdentity();
  beforeAll(async () => {
    // A tiny man in the middle: forwards to the coordinator and swaps every identity key in the
    // answer for the attacker's, leaving the coordinator's signature headers as they were.
    proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req
        .on("data", (c: Buffer) => chunks.push(c))
        .on("end", () => {
          const upstream = httpRequest(
            `${url}${req.url ?? "/"}`,
            { method: req.method, headers: { ...req.headers, host: `127.0.0.1:${served.port}` } },
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
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => proxy.close(() => resolve())));

  it("join tokens carry the fingerprint of the key that signs every roster and enrollment answer", async () => {
    const { token } = await createToken({});
    expect(fingerprintOfToken(token)).toBe(coordinatorKeyFingerprint(service.signingKey.publicKey));
    const res = await fetch(`${url}/v1/roster`);
    const body = await res.text();
    expect(res.headers.get(CoordinatorAnswerHeaders.key)).toBe(service.signingKey.publicKey);
    expect(
      verifyCoordinatorAnswer(
        { path: "/v1/roster", body, header: (n) => res.headers.get(n) },
        { fingerprint: fingerprintOfToken(token)! },
      ),
    ).toEqual({ ok: true, publicKey: service.signingKey.publicKey });
  });

  it("an enrollment answer rewritten in flight fails the check against the token's fingerprint", async () => {
    const { token } = await createToken({});
    const res = await enroll(proxyUrl, { token, name: "linux" });
    expect(res.status).toBe(201); // the coordinator enrolled it; the machine must not believe the answer
    const body = await res.text();
    expect(body).toContain(attacker.publicKey);
    const check = verifyCoordinatorAnswer(
      { path: "/v1/enroll", body, header: (n) => res.headers.get(n) },
      { fingerprint: fingerprintOfToken(token)! },
    );
    expect(check).toMatchObject({ ok: false, message: expect.stringMatching(/changed on the way/) });
  });

  it("the roster source refuses a roster rewritten in flight, and keeps none of the attacker's keys", async () => {
    const logs: string[] = [];
    const viaAttacker = coordinatorRoster({
      url: proxyUrl,
      coordinatorKey: service.signingKey.publicKey,
      log: (m) => logs.push(m),
    });
    await expect(viaAttacker.entries()).rejects.toThrow(/refused.*changed on the way/);
    expect(await viaAttacker.lookup("mac").catch(() => undefined)).toBeUndefined();
    // The same source straight to the hub accepts the genuine roster.
    const direct = coordinatorRoster({ url, coordinatorKey: service.signingKey.publicKey });
    expect((await direct.lookup("mac"))?.identityPublicKey).not.toBe(attacker.publicKey);
    // An attacker who re-signs with its own key is refused by the pin too.
    const pinnedElsewhere = coordinatorRoster({ url, coordinatorKey: attacker.publicKey });
    await expect(pinnedElsewhere.entries()).rejects.toThrow(/another key/);
  });
});
