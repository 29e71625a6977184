import { InferStreamChunk } from "@potluck/protocol";
import { signRequest } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PeerDirectory } from "../src/peer/directory.js";
import { readyTinyEngine } from "./fixtures.js";
import {
  directoryFor,
  newIdentity,
  recordingUsage,
  startSidecar,
  writeRoster,
  type RunningSidecar,
} from "./harness.js";

// /peer/infer on a real sidecar with the tiny model, whose roster answers `peers()` only when the
// test says so: the first token must not wait for the roster, the usage event still uses it.
const ids = { friend: newIdentity("friend"), linux: newIdentity("linux") };
const roster = writeRoster([
  { name: "friend", owner: "alice", identity: ids.friend },
  { name: "linux", owner: "home", identity: ids.linux },
]);
const usage = recordingUsage();
let release: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (release = resolve));
let linux: RunningSidecar;
let model: string;
let closeEngine: () => Promise<void>;

beforeAll(async () => {
  const real = directoryFor(roster.path, "linux", new Map());
  const gated: PeerDirectory = {
    signer: (machine) => real.signer(machine),
    peers: async () => (await gate, real.peers()),
  };
  const served = await readyTinyEngine();
  model = served.id;
  closeEngine = () => served.engine.close();
  linux = await startSidecar({ machine: "linux", engine: served.engine, identity: ids.linux, directory: gated, usage });
});

afterAll(async () => {
  release();
  await linux?.close();
  await closeEngine?.();
  roster.cleanup();
});

describe("/peer/infer", () => {
  it("streams the first token before the roster lookup for the caller's owner returns, and meters with the roster's owner", async () => {
    // The caller claims an owner the roster does not give it: the roster's word is what counts.
    const body = JSON.stringify({
      jobId: "job-gated",
      model,
      messages: [{ role: "user", content: "hi" }],
      maxTokens: 4,
      temperature: 0,
      requester: { machine: "friend", owner: "claimed" },
      holdEventId: "job-gated:hold",
      holdSeq: 1,
    });
    const res = await fetch(`${linux.url}/peer/infer`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...signRequest(
          { method: "POST", path: "/peer/infer", body, target: "linux" },
          { machine: "friend", privateKey: ids.friend.privateKey },
        ),
      },
      body,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) text += (await reader.read()).value ?? "";
    expect(InferStreamChunk.parse(JSON.parse(text.slice(0, text.indexOf("\n"))))).toMatchObject({ type: "token" });
    release();
    for (let next = await reader.read(); next.done !== true; next = await reader.read()) text += next.value;
    const chunks = text
      .trim()
      .split("\n")
      .map((line) => InferStreamChunk.parse(JSON.parse(line)));
    expect(chunks.at(-1)).toMatchObject({ type: "done", servedBy: "linux" });
    // The settlement of the caller's hold: the hold's account is the roster's owner of the caller.
    expect(usage.jobs).toEqual([
      expect.objectContaining({
        jobId: "job-gated",
        side: "settle",
        account: "alice",
        counterparty: "home",
        ref: "job-gated:hold",
      }),
    ]);
    expect(chunks.at(-1)).toMatchObject({ settlement: { eventId: "job-gated:settle" } });
  });
});
