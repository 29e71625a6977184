import { TokenCreateRequest, zodHook } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import { requireAdmin } from "../admin.js";
import type { CoordinatorState } from "../state.js";

/** POST /v1/tokens (admin): a fresh join token, shown once; only its hash is stored. */
export function tokenRoutes(state: CoordinatorState, adminSecret: string) {
  return new Hono().post("/", validator("json", zodHook(TokenCreateRequest)), async (c) => {
    requireAdmin(adminSecret, c.req.raw.headers);
    return c.json(await state.createToken(c.req.valid("json")), 201);
  });
}
