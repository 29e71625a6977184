import { CoordinatorAdminHeader, ErrorCode, KeyRotateRequest, PotluckHttpError, zodHook } from "@potluck/protocol";
import { ReplayCache, SignedAudience, verifyRequest } from "@potluck/peer";
import { Hono, type Context } from "hono";
import { validator } from "hono/validator";
import { requireAdmin } from "../admin.js";
import type { CoordinatorState } from "../state.js";

/**
 * GET /v1/roster and /v1/machines/:id are open: they hold only public keys, mesh addresses and
 * liveness, which every enrolled machine needs to build its tunnel. Removal needs the admin
 * secret. Key rotation needs the admin secret, or a request signed by the machine's own current
 * identity key (the peer-request signature from protocol/signing.ts) — a machine may rotate
 * its own keys and no one else's.
 */
export function rosterRoutes(state: CoordinatorState) {
  return (
    new Hono()
      .get("/", async (c) => c.json(await state.roster()))
      // A machine following the roster polls this (a few bytes) and fetches the roster only when it moved.
      .get("/version", async (c) => c.json({ version: await state.rosterVersion() }))
  );
}

export function machineRoutes(state: CoordinatorState, adminSecret: string) {
  const replay = new ReplayCache();
  return new Hono()
    .get("/:id", async (c) => c.json(await state.machine(c.req.param("id"))))
    .delete("/:id", async (c) => {
      requireAdmin(adminSecret, c.req.raw.headers);
      return c.json(await state.remove(c.req.param("id")));
    })
    .post(
      "/:id/keys",
      async (c, next) => {
        await c.req.text(); // cache the exact bytes: the signature covers them, not a re-serialization
        await next();
      },
      validator("json", zodHook(KeyRotateRequest)),
      async (c) => {
        await authorizeRotation(c, state, adminSecret, replay);
        return c.json(await state.rotateKeys(c.req.param("id"), c.req.valid("json")));
      },
    );
}

async function authorizeRotation(
  c: Context,
  state: CoordinatorState,
  adminSecret: string,
  replay: ReplayCache,
): Promise<void> {
  const headers = c.req.raw.headers;
  if (headers.has(CoordinatorAdminHeader) || headers.has("authorization")) return requireAdmin(adminSecret, headers);
  const target = await state.machine(c.req.param("id") ?? "");
  const url = new URL(c.req.url);
  const result = await verifyRequest(
    {
      method: c.req.method,
      path: `${url.pathname}${url.search}`,
      body: await c.req.text(),
      headers: (name) => c.req.header(name),
    },
    {
      target: SignedAudience.coordinator,
      lookupKey: async (machine) => (machine === target.name ? target.identityPublicKey : undefined),
      replay,
    },
  );
  if (!result.ok) {
    throw new PotluckHttpError(
      401,
      ErrorCode.unauthorized,
      `key rotation for ${target.name} needs the admin secret or a request signed by ${target.name}'s identity key: ${result.message}`,
    );
  }
}
