import { AccountParam, ConsistencyQuery, PotluckHttpError, SizeParam, zodHook } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import { requireWriter, type WriteAuth, type WriterVariables } from "../auth/writers.js";
import type { Ledger } from "../ledger/service.js";
import { operatorOnly } from "./events.js";

/** Checkpoints, proofs and snapshots: what a member or a witness reads to check the operator. */
export function logRoutes(ledger: Ledger, auth: WriteAuth | undefined) {
  const writer = requireWriter(auth);
  return new Hono<{ Variables: WriterVariables }>()
    .get("/key", (c) => c.json({ key: ledger.publicKey, origin: ledger.origin }))
    .get("/checkpoints/latest", async (c) =>
      c.json(await found(ledger.latestCheckpoint(), "no checkpoint has been signed yet")),
    )
    .get("/checkpoints/:size", validator("param", zodHook(SizeParam)), async (c) =>
      c.json(await found(ledger.checkpointAt(c.req.valid("param").size), "no checkpoint at that size")),
    )
    .post("/checkpoints", writer, async (c) => {
      operatorOnly(c, "signing a checkpoint on demand");
      return c.json(await found(ledger.checkpoint(), "the log is empty"), 201);
    })
    .post("/snapshots", writer, async (c) => {
      operatorOnly(c, "a snapshot on demand");
      return c.json(await ledger.snapshot(), 201);
    })
    .get("/proofs/consistency", validator("query", zodHook(ConsistencyQuery)), async (c) => {
      const { from, to } = c.req.valid("query");
      const size = await ledger.log.size();
      if (from > to || to > size)
        throw new PotluckHttpError(400, "invalid_request", `need 0 < from ≤ to ≤ ${size}`, from > to ? "from" : "to");
      return c.json({ from, to, proof: (await ledger.log.consistency(from, to)).map((h) => h.toString("hex")) });
    })
    .get("/proofs/:account", validator("param", zodHook(AccountParam)), async (c) => {
      const { account } = c.req.valid("param");
      if ((await ledger.balance(account)) === undefined)
        throw new PotluckHttpError(404, "unknown_account", `unknown account ${account}: it has no entries`, "account");
      const bundle = await ledger.proofBundle(account);
      if (bundle === undefined)
        throw new PotluckHttpError(
          404,
          "no_snapshot",
          `no balance snapshot includes ${account} yet; POST /v1/snapshots takes one`,
          "account",
        );
      return c.json(bundle);
    });
}

async function found<T>(p: Promise<T | undefined>, message: string): Promise<T> {
  const value = await p;
  if (value === undefined) throw new PotluckHttpError(404, "not_found", message);
  return value;
}
