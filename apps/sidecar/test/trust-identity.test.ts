import { readFileSync } from "node:fs";
import { Headers } from "@potluck/protocol";
import { signRequest } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readyTinyEngine } from "./fixtures.js";
import {
  directoryFor,
  newIdentity,
  recordingUsage,
  startSidecar,
  writeRoster,
  type RunningSidecar,
} from "./harness.js";

// Attacks on identity against real sidecars (startSidecarService, listening, the tiny model): eve,
// a machine of another owner on the roster, signs under her roster id (attack 5) and replays a
// call mac made to her at linux (attack 9). Nothing may be served or metered for the attack, and
// the roster stays byte for byte what it was.
const ids = { mac: newIdentity("mac"), linux: newIdentity("linux"), eve: newIdentity("eve") };
const roster = writeRoster([
  { name: "mac", owner: "home", identity: ids.mac },
  { name: "linux", owner: "home", identity: ids.linux },
  { name: "eve", owner: "eve", identity: ids.eve },
]);
const usage = { linux: recordingUsage(), eve: recordingUsage() };
let linux: RunningSidecar;
let eve: RunningSidecar;
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
    usage: usage.linux,
  });
  eve = await startSidecar({
    machine: "eve",
    owner: "eve",
    engine: served.engine,
    identity: ids.eve,
    directory: directoryFor(roster.path, "eve", new Map()),
    usage: usage.eve,
  });
}, 120_000);
afterAll(async () => {
  await linux?.close();
  await eve?.close();
  await closeEngine?.();
  roster.cleanup();
});

const inferBody = (jobId: string, requester: { machine: string; owner: string }) =>
  JSON.stringify({
    jobId,
    model,
    messages: [{ role: "user", content: "hi" }],
    maxTokens: 2,
    temperature: 0,
    requester,
    holdEventId: `${jobId}:hold`,
    holdSeq: 1,
  });

async function post(
  url: string,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; code?: string; text: string }> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, text };
}

describe("attack 5: signing under an alias", () => {
  it("refuses a request signed under the roster id, and meters a signer by its roster owner whatever it claims", async () => {
    const rosterBefore = readFileSync(roster.path);
    const aliased = inferBody("job-alias", { machine: "id-eve", owner: "home" });
    const asId = signRequest(
      { method: "POST", path: "/peer/infer", body: aliased, target: "linux" },
      { machine: "id-eve", privateKey: ids.eve.privateKey },
    );
    expect(await post(linux.url, "/peer/infer", aliased, asId)).toMatchObject({ status: 401, code: "unknown_key" });
    expect(usage.linux.jobs).toEqual([]);

    // Under her name, claiming to be of linux's owner: served, and billed to eve, not skipped as "home".
    const claimed = inferBody("job-claimed", { machine: "eve", owner: "home" });
    const res = await post(
      linux.url,
      "/peer/infer",
      claimed,
      signRequest(
        { method: "POST", path: "/peer/infer", body: claimed, target: "linux" },
        { machine: "eve", privateKey: ids.eve.privateKey },
      ),
    );
    expect(res.status).toBe(200);
    await expect.poll(() => usage.linux.jobs.length).toBe(1);
    // linux settles eve's hold: the hold's account is eve's roster owner, not the "home" she claimed.
    expect(usage.linux.jobs[0]).toMatchObject({
      jobId: "job-claimed",
      side: "settle",
      account: "eve",
      counterparty: "home",
    });
    expect(readFileSync(roster.path).equals(rosterBefore)).toBe(true);
  }, 60_000);
});

describe("attack 9: replaying a signed call at another machine", () => {
  it("refuses at linux a call mac signed for eve, which eve had already served", async () => {
    const before = { linux: usage.linux.jobs.length, eve: usage.eve.jobs.length };
    const body = inferBody("job-replay", { machine: "mac", owner: "home" });
    const forEve = signRequest(
      { method: "POST", path: "/peer/infer", body, target: "eve" },
      { machine: "mac", privateKey: ids.mac.privateKey },
    );
    const atEve = await post(eve.url, "/peer/infer", body, forEve);
    expect(atEve.status).toBe(200);
    // eve replays mac's headers at linux, inside the time window and with a nonce linux never saw.
    const replayed = await post(linux.url, "/peer/infer", body, forEve);
    expect(replayed).toMatchObject({ status: 401, code: "bad_signature" });
    expect(replayed.text).toMatch(/target linux/);
    expect(usage.linux.jobs.length).toBe(before.linux);
    // The machine header is bound too: the same headers naming another signer do not verify.
    const renamed = await post(linux.url, "/peer/probe", JSON.stringify({ payload: "x" }), {
      ...signRequest(
        { method: "POST", path: "/peer/probe", body: JSON.stringify({ payload: "x" }), target: "linux" },
        { machine: "mac", privateKey: ids.mac.privateKey },
      ),
      [Headers.machine]: "eve",
    });
    expect(renamed).toMatchObject({ status: 401, code: "bad_signature" });
  }, 60_000);

  it("refuses a peer call signed for a service audience (the ledger) and vice versa", async () => {
    const body = JSON.stringify({ payload: "x" });
    const forLedger = signRequest(
      { method: "POST", path: "/peer/probe", body, target: "potluck-ledger" },
      { machine: "mac", privateKey: ids.mac.privateKey },
    );
    expect(await post(linux.url, "/peer/probe", body, forLedger)).toMatchObject({ status: 401, code: "bad_signature" });
  });
});
