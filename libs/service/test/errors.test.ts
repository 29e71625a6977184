import { ErrorBody, PotluckHttpError } from "@potluck/protocol";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { validator } from "hono/validator";
import { describe, expect, it } from "vitest";
import { jsonErrors } from "../src/errors.js";
import { recordingLog } from "./support.js";

function app() {
  const log = recordingLog();
  const built = new Hono()
    .get("/teapot", () => {
      throw new PotluckHttpError(409, "conflict", "name: taken", "name");
    })
    .get("/framework", () => {
      throw new HTTPException(401, { message: "who are you" });
    })
    .get("/bug", () => {
      throw new Error("secret internals");
    })
    .get("/db-restarting", () => {
      // As drizzle wraps postgres-js's error for a server that is starting up.
      throw new Error("Failed query: insert into entries …", {
        cause: Object.assign(new Error("the database system is starting up"), { code: "57P03" }),
      });
    })
    .post(
      "/json",
      validator("json", (value) => value),
      (c) => c.json(c.req.valid("json")),
    );
  return { app: jsonErrors(built, { log }), log };
}

describe("jsonErrors", () => {
  it("answers an unknown route with 404 naming it", async () => {
    const res = await app().app.request("/nope", { method: "PUT" });
    expect(res.status).toBe(404);
    expect(ErrorBody.parse(await res.json()).error).toEqual({ code: "not_found", message: "no route for PUT /nope" });
  });

  it("keeps a thrown error's status, code and field", async () => {
    const res = await app().app.request("/teapot");
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({ error: { code: "conflict", message: "name: taken", field: "name" } });
    const framework = await app().app.request("/framework");
    expect(framework.status).toBe(401);
    expect(ErrorBody.parse(await framework.json()).error.code).toBe("unauthorized");
  });

  it("answers a database that is restarting or unreachable with 503 and Retry-After, not a 500", async () => {
    const res = await app().app.request("/db-restarting");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    const body = ErrorBody.parse(await res.json());
    expect(body.error.code).toBe("unavailable");
    expect(body.error.message).toMatch(/database is unavailable/);
    expect(JSON.stringify(body)).not.toContain("insert into");
  });

  it("hides a 500's cause from the caller and logs it with the error", async () => {
    const { app: built, log } = app();
    const res = await built.request("/bug");
    expect(res.status).toBe(500);
    expect(JSON.stringify(await res.json())).not.toContain("secret");
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({
      level: "error",
      msg: "request failed with an internal error",
      obj: { method: "GET", path: "/bug" },
    });
    expect((log.lines[0]?.obj as { err: Error }).err.message).toBe("secret internals");
  });

  it("names the body as the field when it is not JSON at all", async () => {
    const res = await app().app.request("/json", {
      method: "POST",
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    const { error } = ErrorBody.parse(await res.json());
    expect(error.code).toBe("malformed_json");
    expect(error.field).toBe("body");
    expect(error.message).toMatch(/^body: /);
  });
});
