import { request } from "node:http";
import { ErrorBody } from "@potluck/protocol";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonErrors } from "../src/errors.js";
import { loopbackGuard, nodeRemoteAddress } from "../src/loopback-guard.js";
import { serveApp, type ServedApp } from "../src/serve.js";

function buildApp(options: Parameters<typeof loopbackGuard>[0]) {
  const app = new Hono()
    .use(loopbackGuard(options))
    .get("/peer/open", (c) => c.text("open"))
    .get("/memory", (c) => c.text("secret"))
    .post("/memory", (c) => c.text("written"));
  return jsonErrors(app);
}

async function refusal(res: Response) {
  return ErrorBody.parse(await res.json()).error;
}

describe("loopbackGuard (app.request)", () => {
  const app = buildApp({ isOpen: (path) => path.startsWith("/peer/"), what: "the local API" });

  it("serves loopback names and loopback pages, with or without a port", async () => {
    for (const host of ["127.0.0.1:11435", "localhost", "[::1]:80"])
      expect((await app.request("/memory", { headers: { host } })).status, host).toBe(200);
    const fromDashboard = await app.request("/memory", {
      method: "POST",
      headers: { host: "127.0.0.1:11435", origin: "http://127.0.0.1:11435" },
    });
    expect(fromDashboard.status).toBe(200);
  });

  it("refuses a DNS-rebound Host with a 403 naming the header", async () => {
    const res = await app.request("/memory", { headers: { host: "rebind.evil.example:11435" } });
    expect(res.status).toBe(403);
    expect(await refusal(res)).toMatchObject({ code: "forbidden", field: "host" });
  });

  it("refuses a foreign or opaque Origin even under a loopback Host", async () => {
    for (const origin of ["http://evil.example", "null", "http://127.0.0.1.evil.example", "file://"]) {
      const res = await app.request("/memory", { method: "POST", headers: { host: "127.0.0.1:11435", origin } });
      expect(res.status, origin).toBe(403);
      expect((await refusal(res)).field, origin).toBe("origin");
    }
  });

  it("leaves open paths alone", async () => {
    expect(
      (await app.request("/peer/open", { headers: { host: "10.0.0.2:11435", origin: "http://evil.example" } })).status,
    ).toBe(200);
  });
});

describe("loopbackGuard with an API key", () => {
  const apiKey = "k-0123456789";
  const app = buildApp({ apiKey, remoteAddress: () => "192.168.1.20" });

  it("serves a LAN caller that presents the key, under any Host", async () => {
    const res = await app.request("/memory", {
      headers: { host: "desk.lan:11435", authorization: `Bearer ${apiKey}` },
    });
    expect(res.status).toBe(200);
  });

  it("refuses a LAN caller without the key (403) and with a wrong one (401)", async () => {
    const without = await app.request("/memory", { headers: { host: "desk.lan:11435" } });
    expect(without.status).toBe(403);
    expect(await refusal(without)).toMatchObject({ field: "address" });
    const wrong = await app.request("/memory", { headers: { host: "desk.lan:11435", authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    expect(await refusal(wrong)).toMatchObject({ code: "unauthorized", field: "authorization" });
  });

  it("never opens the API to the LAN without a key", async () => {
    const noKey = buildApp({ remoteAddress: () => "192.168.1.20" });
    const res = await noKey.request("/memory", { headers: { host: "127.0.0.1", authorization: "Bearer anything" } });
    expect(res.status).toBe(403);
    expect((await refusal(res)).message).toContain("POTLUCK_API_KEY");
  });

  it("ignores a local client's own unrelated bearer token on loopback", async () => {
    const local = buildApp({ apiKey, remoteAddress: () => "127.0.0.1" });
    expect(
      (
        await local.request("/memory", {
          headers: { host: "localhost:11435", authorization: "Bearer sk-openai-sdk-dummy" },
        })
      ).status,
    ).toBe(200);
  });
});

describe("loopbackGuard over a real socket", () => {
  let served: ServedApp;
  beforeAll(async () => {
    served = await serveApp(buildApp({ remoteAddress: nodeRemoteAddress }), { port: 0, hostname: "127.0.0.1" });
  });
  afterAll(async () => {
    await served.close();
  });

  it("refuses what a rebinding page sends from loopback, and serves the same request under 127.0.0.1", async () => {
    const rebound = await rawRequest(served.port, {
      host: `attacker.example:${served.port}`,
      origin: `http://attacker.example:${served.port}`,
    });
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body)).toMatchObject({ error: { field: "host" } });
    const honest = await rawRequest(served.port, { host: `127.0.0.1:${served.port}` });
    expect(honest).toEqual({ status: 200, body: "written" });
  });
});

/** node:http lets a test choose Host freely, as a rebinding browser effectively does. */
function rawRequest(port: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/memory", method: "POST", headers }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (part: Buffer) => parts.push(part));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString("utf8") }));
    });
    req.on("error", reject);
    req.end();
  });
}
