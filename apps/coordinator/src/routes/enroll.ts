import { EnrollRequest, zodHook } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import type { CoordinatorState } from "../state.js";

/** POST /v1/enroll: the join token is the credential; answers with the machine's mesh config. */
export function enrollRoutes(state: CoordinatorState) {
  return new Hono().post("/", validator("json", zodHook(EnrollRequest)), async (c) =>
    c.json(await state.enroll(c.req.valid("json")), 201),
  );
}
