import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateIdentity, type Roster } from "@potluck/protocol";
import { createLab, type LabHost } from "../../src/lab/index.js";
import { labRosterEntry } from "../../src/lab/roster.js";
import { pollUntil } from "../../src/lab/run.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";
import type { RunTiming } from "./client.js";

const port = 8321;
const client = join(repoRoot, "tools/bench/inference/client.ts");

/**
 * The peer path: a two-host lab, linux serving the model, mac with none; the client runs inside
 * mac against mac's own sidecar, which routes every request to linux over the WireGuard mesh
 * (with the fresh data-plane probe routing always does). The caller tears the lab down.
 */
export async function startLabPeer(o: { modelPath: string; modelId: string; maxTokens: number; prompt: string }): Promise<{ name: string; once(): Promise<RunTiming>; close(): Promise<void> }> {
  const lab = await createLab({ hosts: ["mac", "linux"] });
  try {
    const mac = lab.host("mac");
    const linux = lab.host("linux");
    const ids = new Map([mac, linux].map((h) => [h.name, generateIdentity()]));
    const roster: Roster = { version: 1, machines: [mac, linux].map((h) => labRosterEntry(h, ids.get(h.name)!.publicKey)) };
    for (const host of [mac, linux]) {
      const data = join(host.runDir, "potluck");
      mkdirSync(join(data, "models"), { recursive: true, mode: 0o700 });
      writeFileSync(join(data, "identity-ed25519.pem"), ids.get(host.name)!.privateKeyPem, { mode: 0o600 });
      chmodSync(join(data, "identity-ed25519.pem"), 0o600);
      writeFileSync(join(host.runDir, "roster.json"), JSON.stringify(roster));
    }
    const linuxModels = join(linux.runDir, "potluck", "models");
    copyFileSync(o.modelPath, join(linuxModels, `${o.modelId}.gguf`));
    const start = (host: LabHost, models: string) =>
      host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
        cwd: repoRoot,
        env: { POTLUCK_MACHINE: host.name, POTLUCK_DATA_DIR: join(host.runDir, "potluck"), POTLUCK_ROSTER_FILE: join(host.runDir, "roster.json"), POTLUCK_MODELS: models, POTLUCK_THREADS: "1", POTLUCK_CONTEXT_SIZE: "2048", POTLUCK_PORT: String(port) },
      });
    start(linux, linuxModels);
    start(mac, join(mac.runDir, "potluck", "models"));
    for (const host of [mac, linux]) {
      const ok = await pollUntil(async () => (await host.exec(["curl", "-sf", `http://127.0.0.1:${port}/health`])).stdout.includes('"ok"'), { timeoutMs: 180_000, intervalMs: 500 });
      if (!ok) throw new Error(`sidecar on ${host.name} did not become ready`);
    }
    // One client process per run (its start-up is outside the timed part), inside mac's namespace.
    const once = async (): Promise<RunTiming> => {
      const result = await mac.exec(
        [process.execPath, "--import", "tsx", client, "--url", `http://127.0.0.1:${port}`, "--model", o.modelId, "--max-tokens", String(o.maxTokens), "--repeats", "1", "--warmup", "0", "--prompt", o.prompt],
        { cwd: repoRoot, timeoutMs: 300_000 },
      );
      const line = result.stdout.split("\n").find((l) => l.startsWith("{"));
      if (result.code !== 0 || line === undefined) throw new Error(`bench client in mac failed: ${result.stderr.slice(-1000)}`);
      return JSON.parse(line) as RunTiming;
    };
    return { name: "peer over lab mesh", once, close: () => lab.teardown() };
  } catch (error) {
    await lab.teardown();
    throw error;
  }
}

