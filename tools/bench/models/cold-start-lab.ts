// Cold start to first token over the lab mesh: mac (no model) asks for the tiny TEST model, which
// linux has available but not loaded (POTLUCK_KEEP_ALIVE=0: unloaded after every request), then
// the same with linux keeping it loaded (-1). Time from mac's request to its first token event.
//
//   flock /tmp/potluck-bench.lock node --import tsx tools/bench/models/cold-start-lab.ts [--repeats 5]
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  createLab,
  rosterSidecarPort,
  seedRosterHousehold,
  startRosterSidecar,
  type LabHost,
  type LabProcess,
} from "../../src/lab/index.js";
import { benchFlags } from "../common/args.js";

const { flags } = benchFlags(process.argv.slice(2), { strings: ["repeats"], positionals: false });
const repeats = Number(flags.get("repeats") ?? 5);
const port = rosterSidecarPort;
const model = "potluck-tiny-test-model-s1-v2";

/** Run inside mac's namespace: ms from the request to the first token's SSE event. */
const firstTokenScript = `
const started = performance.now();
const res = await fetch("http://127.0.0.1:${port}/v1/chat/completions", { method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "${model}", stream: true, max_tokens: 4, messages: [{ role: "user", content: "Hi" }] }) });
const reader = res.body.getReader(); const decoder = new TextDecoder(); let text = ""; let ms;
for (let p = await reader.read(); !p.done; p = await reader.read()) {
  text += decoder.decode(p.value, { stream: true });
  if (ms === undefined && text.includes('"content":')) ms = performance.now() - started;
}
if (ms === undefined) { console.error(res.status, text.slice(0, 300)); process.exit(1); }
console.log(JSON.stringify({ ms, loading: (text.match(/^: loading /gm) ?? []).length }));`;

const lab = await createLab({ hosts: ["mac", "linux"] });
try {
  const [mac, linux] = [lab.host("mac"), lab.host("linux")];
  seedRosterHousehold([mac, linux]);
  const start = (host: LabHost, env: NodeJS.ProcessEnv): Promise<LabProcess> => startRosterSidecar(host, env, port);
  const noModels = join(mac.runDir, "no-models");
  mkdirSync(noModels, { recursive: true });
  await start(mac, { POTLUCK_MODELS: noModels });
  const ask = async () => {
    const out = await mac.exec([process.execPath, "--input-type=module", "-e", firstTokenScript], {
      timeoutMs: 120_000,
    });
    if (out.code !== 0) throw new Error(`ask failed: ${out.stderr}`);
    return JSON.parse(out.stdout) as { ms: number; loading: number };
  };
  const series = async (keepAlive: string) => {
    const linuxProc = await start(linux, { POTLUCK_KEEP_ALIVE: keepAlive });
    const first = await ask();
    const rest = [];
    for (let i = 0; i < repeats; i++) rest.push(await ask());
    await linuxProc.stop();
    return { first, rest };
  };
  const cold = await series("0");
  const warm = await series("-1");
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    `over the lab mesh, mac -> linux (tiny model):\n` +
      `first request after linux started (probe + load): ${cold.first.ms.toFixed(1)} ms\n` +
      `cold (available, not loaded): median ${median(cold.rest.map((r) => r.ms)).toFixed(1)} ms over ${repeats}, ` +
      `${cold.rest[0]?.loading ?? 0} progress events\n` +
      `warm (loaded): median ${median(warm.rest.map((r) => r.ms)).toFixed(1)} ms over ${repeats}\n`,
  );
  process.stdout.write(`${JSON.stringify({ repeats, cold, warm })}\n`);
} finally {
  await lab.teardown();
}
