// Pieces of the peer path, timed from inside the asking machine (mac in the lab) with its own
// identity key, without its sidecar in between:
//   --mode infer   a signed POST /peer/infer straight to the serving sidecar: what the serving side
//                  (signature check, replay cache, body limit, validation, engine start, NDJSON)
//                  adds over the bare mesh floor;
//   --mode probe   the fresh data-plane probe routing makes before it trusts a path (large, with
//                  the model named): the round trip the head start overlaps with the job.
// Long-lived and line-driven like client.ts --stdin: "ready", then one JSON timing per "run" line.
//
//   node --import tsx tools/bench/inference/peer-direct.ts --mode infer|probe --identity PEM
//     --machine mac --target linux --url http://MESH_IP:PORT --model M --max-tokens N --prompt P
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { PeerClient, privateKeyFromPem, signRequest } from "@potluck/peer";
import { benchFlags } from "../common/args.js";
import type { RunTiming } from "./client.js";

const { flags } = benchFlags(process.argv.slice(2), {
  strings: ["identity", "machine", "max-tokens", "mode", "model", "prompt", "target", "url"],
  booleans: [],
  positionals: false,
});
const need = (name: string): string => {
  const value = flags.get(name);
  if (value === undefined) throw new Error(`peer-direct: --${name} is required`);
  return value;
};
const machine = need("machine");
const privateKey = privateKeyFromPem(readFileSync(need("identity"), "utf8"));
const client = new PeerClient({ sign: (request) => signRequest(request, { machine, privateKey }) });
const peer = { machine: need("target"), url: need("url") };
const model = need("model");
const mode = need("mode");
let jobs = 0;

async function inferOnce(): Promise<RunTiming> {
  const started = performance.now();
  let ttftMs: number | undefined;
  for await (const chunk of client.infer(peer, {
    jobId: `bench-direct-${process.pid}-${jobs++}`,
    model,
    messages: [{ role: "user", content: flags.get("prompt") ?? "Hello" }],
    maxTokens: Number(flags.get("max-tokens") ?? 256),
    temperature: 0,
    requester: { machine, owner: "bench" },
  })) {
    if (chunk.type === "error") throw new Error(`${chunk.code}: ${chunk.message}`);
    if (ttftMs === undefined && chunk.type === "token" && chunk.text.length > 0) ttftMs = performance.now() - started;
    if (chunk.type === "done") {
      const totalMs = performance.now() - started;
      return {
        ttftMs: ttftMs ?? totalMs,
        totalMs,
        completionTokens: chunk.usage.completionTokens,
        servedBy: chunk.servedBy,
      };
    }
  }
  throw new Error("peer-direct: the stream ended without its final chunk");
}

async function probeOnce(): Promise<RunTiming> {
  const { latencyMs } = await client.probe(peer, { model });
  return { ttftMs: latencyMs, totalMs: latencyMs, completionTokens: 0, servedBy: peer.machine };
}

process.stdout.write("ready\n");
for await (const _ of createInterface({ input: process.stdin }))
  process.stdout.write(`${JSON.stringify(await (mode === "probe" ? probeOnce() : inferOnce()))}\n`);
