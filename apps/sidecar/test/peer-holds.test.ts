import { signRequest } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HoldChecker, HoldClaim } from "../src/usage/hold-check.js";
import { readyTinyEngine } from "./fixtures.js";
import {
  directoryFor,
  newIdentity,
  recordingUsage,
  startSidecar,
  writeRoster,
  type RunningSidecar,
} from "./harness.js";

// A job for another owner runs only on a hold the serving machine has read and checked: here a
// real sidecar (the tiny model) whose checker refuses every hold but one, and eve of another owner.
const ids = { linux: newIdentity("linux"), eve: newIdentity("eve") };
const roster = writeRoster([
  { name: "linux", owner: "home", identity: ids.linux },
  { name: "eve", owner: "eve", identity: ids.eve },
]);
const usage = recordingUsage();
const claims: HoldClaim[] = [];
const holds: HoldChecker = {
  check: async (claim) => {
    claims.push(claim);
    return claim.seq === 42
      ? { ok: true, amount: 1 }
      : { ok: false, status: 402, code: "hold_not_found", message: `no hold at sequence ${claim.seq}` };
  },
};
let linux: RunningSidecar;
let model: string;
let closeEngine: () => Promise<void>;

beforeAll(async () => {
  const served = await readyTinyEngine();
  model = served.id;
  closeEngine = () => served.engine.close();
  linux = await startSidecar({
    machine: "linux",
    engine: served.engine,
    identity: ids.linux,
    directory: directoryFor(roster.path, "linux", new Map()),
    usage,
    holds,
  });
}, 120_000);
afterAll(async () => {
  await linux?.close();
  await closeEngine?.();
  roster.cleanup();
});

async function eveAsks(jobId: string, hold: { holdEventId?: string; holdSeq?: number }) {
  const body = JSON.stringify({
    jobId,
    model,
    messages: [{ role: "user", content: "hi" }],
    maxTokens: 4,
    temperature: 0,
    requester: { machine: "eve", owner: "eve" },
    ...hold,
  });
  const headers = signRequest(
    { method: "POST", path: "/peer/infer", body, target: "linux" },
    { machine: "eve", privateKey: ids.eve.privateKey },
  );
  const res = await fetch(`${linux.url}/peer/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: res.status, text: await res.text() };
}

describe("/peer/infer for another owner", () => {
  it("needs both the hold's id and its place on the usage stream (402 naming the missing one)", async () => {
    const noSeq = await eveAsks("job-a", { holdEventId: "job-a:hold" });
    expect(noSeq.status).toBe(402);
    expect(JSON.parse(noSeq.text).error).toMatchObject({ code: "hold_required", field: "holdSeq" });
    const none = await eveAsks("job-b", {});
    expect(JSON.parse(none.text).error).toMatchObject({ code: "hold_required", field: "holdEventId" });
  });

  it("serves nothing on a hold the stream does not hold, and settles nothing", async () => {
    const before = usage.jobs.length;
    const made = await eveAsks("job-c", { holdEventId: "never-placed:hold", holdSeq: 999 });
    expect(made.status).toBe(402);
    expect(JSON.parse(made.text).error).toMatchObject({ code: "hold_not_found", field: "holdEventId" });
    expect(claims.at(-1)).toEqual({
      eventId: "never-placed:hold",
      seq: 999,
      jobId: "job-c",
      caller: "eve",
      callerOwner: "eve",
      payee: "home",
    });
    expect(usage.jobs.length).toBe(before);
  });

  it("serves a checked hold and settles it for no more than the hold's amount on the stream", async () => {
    const ok = await eveAsks("job-d", { holdEventId: "job-d:hold", holdSeq: 42 });
    expect(ok.status).toBe(200);
    const done = ok.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; settlement?: { amount: number } });
    expect(done.at(-1)).toMatchObject({ type: "done", settlement: { amount: 1 } });
    expect(usage.jobs.at(-1)).toMatchObject({ side: "settle", amount: 1, ref: "job-d:hold", account: "eve" });
  });
});
