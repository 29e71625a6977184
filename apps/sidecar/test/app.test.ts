import { describe, expect, it } from "vitest";
import { buildSidecarApp } from "../src/app.js";

function appFrom(address: string | undefined) {
  return buildSidecarApp({ machine: "mac", startedAt: Date.now(), isWarm: () => true, remoteAddress: () => address });
}

describe("sidecar app", () => {
  it("answers /health with the machine name", async () => {
    const res = await appFrom("127.0.0.1").request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", machine: "mac" });
  });

  it("lets off-box callers reach /health but nothing outside /peer/*", async () => {
    const app = appFrom("100.64.0.7");
    expect((await app.request("/health")).status).toBe(200);
    const res = await app.request("/v1/models");
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/only served to this machine/);
  });

  it("answers unknown routes from loopback with a 404 in the shared shape", async () => {
    const res = await appFrom("::1").request("/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
  });
});
