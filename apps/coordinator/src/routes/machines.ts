import { KeyRotateRequest, zodHook } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import { requireAdmin } from "../admin.js";
import type { CoordinatorState } from "../state.js";

/**
 * GET /v1/roster and /v1/machines/:id are open: they hold only public keys, mesh addresses and
 * liveness, which every enrolled machine needs to build its tunnel. Removal and key rotation
 * change who is in the mesh, so they need the admin secret.
 */
export function rosterRoutes(state: CoordinatorState) {
  return new Hono().get("/", async (c) => c.json(await state.roster()));
}

export function machineRoutes(state: CoordinatorState, adminSecret: string) {
  return new Hono()
    .get("/:id", async (c) => c.json(await state.machine(c.req.param("id"))))
    .delete("/:id", async (c) => {
      requireAdmin(adminSecret, c.req.raw.headers);
      return c.json(await state.remove(c.req.param("id")));
    })
    .post("/:id/keys", validator("json", zodHook(KeyRotateRequest)), async (c) => {
      requireAdmin(adminSecret, c.req.raw.headers);
      return c.json(await state.rotateKeys(c.req.param("id"), c.req.valid("json")));
    });
}
