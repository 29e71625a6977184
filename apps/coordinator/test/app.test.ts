import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCoordinatorConfig } from "../src/config.js";
import { tempDir, testCoordinator } from "./support.js";

// The HTTP surface over embedded PGlite (no DATABASE_URL): the same schema and migrations as Postgres.
const dir = tempDir("potluck-coord-app-");
let t: Awaited<ReturnType<typeof testCoordinator>>;
beforeAll(async () => {
  t = await testCoordinator({ dataDir: dir.path });
});
afterAll(async () => {
  await t?.database.close();
  dir.remove();
});

describe("coordinator app", () => {
  it("answers /health", async () => {
    const res = await t.app.request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", service: "coordinator" });
  });

  it("stops on a bad port naming the variable", () => {
    expect(() => loadCoordinatorConfig({ POTLUCK_COORDINATOR_PORT: "x" }, [])).toThrow(/POTLUCK_COORDINATOR_PORT/);
  });

  it("refuses token creation and removal without the admin secret", async () => {
    const create = await t.app.request("/v1/tokens", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(create.status).toBe(401);
    expect(await create.json()).toMatchObject({ error: { code: "admin_required" } });
    const wrong = await t.app.request("/v1/tokens", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer nope-nope-nope-nope" },
      body: "{}",
    });
    expect(wrong.status).toBe(401);
    const remove = await t.app.request("/v1/machines/anything", { method: "DELETE" });
    expect(remove.status).toBe(401);
  });

  it("enrolls on PGlite and lists the machine in the roster", async () => {
    const token = await t.createToken();
    const res = await t.enroll({ token, name: "mac" });
    expect(res.status, await res.clone().text()).toBe(201);
    const body = (await res.json()) as {
      machine: { meshIp: string; state: string };
      mtu: number;
      prefixLength: number;
      interfaceName: string;
    };
    expect(body).toMatchObject({
      mtu: 1280,
      prefixLength: 10,
      interfaceName: "potluck0",
      machine: { meshIp: "100.64.0.1", state: "never_seen" },
    });
    const roster = (await (await t.app.request("/v1/roster")).json()) as {
      version: number;
      machines: Array<{ name: string }>;
    };
    expect(roster.machines.map((m) => m.name)).toEqual(["mac"]);
    expect(roster.version).toBeGreaterThan(0);
    expect(await (await t.app.request("/v1/roster/version")).json()).toEqual({ version: roster.version });
    expect(t.events.map((e) => e.reason)).toEqual(["enrolled"]);
  });

  it("answers a too-large body with 413 and an unknown machine with 404 naming it", async () => {
    const big = await t.app.request("/v1/enroll", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pad: "x".repeat(70_000) }),
    });
    expect(big.status).toBe(413);
    const missing = await t.app.request("/v1/machines/ghost");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "machine_unknown", field: "id" } });
  });
});
