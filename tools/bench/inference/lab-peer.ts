import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Roster } from "@potluck/protocol";
import { generateIdentity } from "@potluck/peer";
import {
  createLab,
  delayMeshPath,
  type LabHost,
  labIdEnv,
  pinArgv,
  labRosterEntry,
  pollUntil,
} from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";
import { coalesceWindowMs } from "@potluck/sidecar";
import type { RunTiming } from "./client.js";
import { startLineDriven, type LineDriven } from "./line-driven.js";

const port = 8321;
const barePort = 8322;
/** Extra sidecars on mac (`variants`) listen from here up. */
const variantPortBase = 8331;
const client = join(repoRoot, "tools/bench/inference/client.ts");
const bareStream = join(repoRoot, "tools/bench/inference/bare-stream.ts");
const peerDirect = join(repoRoot, "tools/bench/inference/peer-direct.ts");

export interface LabPath {
  name: string;
  /** A piece of the peer path timed alone (a probe), not a reply: kept out of the tokens/s table. */
  component?: boolean;
  once(): Promise<RunTiming>;
}

/**
 * The peer path: a two-host lab, linux serving the model, mac with none; the client runs inside
 * mac against mac's own sidecar, which routes every request to linux over the WireGuard mesh
 * (with the fresh data-plane probe routing makes per prompt). And its floor: raw node-llama-cpp on
 * linux streamed by a bare node:http server (bare-stream.ts) to the same kind of client in mac,
 * over the same mesh — what the mesh alone costs. `close` tears the lab down.
 * `latencyMs`: held that long each way on the mesh between mac and linux (a slower link).
 * `variants`: more sidecars on mac, each with its own settings and client, as more peer paths.
 * Two pieces of the peer path are timed from mac without its sidecar (peer-direct.ts): a signed
 * /peer/infer straight to linux (the serving side alone) and routing's probe alone.
 */
export async function startLabPeer(o: {
  modelPath: string;
  modelId: string;
  maxTokens: number;
  prompt: string;
  contextSize: number;
  cpus?: { mac: number; linux: number };
  latencyMs?: number;
  variants?: ReadonlyArray<{ name: string; env: NodeJS.ProcessEnv }>;
}): Promise<{ paths: LabPath[]; close(): Promise<void> }> {
  const lab = await createLab({ hosts: ["mac", "linux"], ...(o.cpus === undefined ? {} : { cpus: o.cpus }) });
  const clients: LineDriven[] = [];
  const close = async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await lab.teardown();
  };
  try {
    const mac = lab.host("mac");
    const linux = lab.host("linux");
    const ids = new Map([mac, linux].map((h) => [h.name, generateIdentity()]));
    const roster: Roster = {
      version: 1,
      machines: [mac, linux].map((h) => labRosterEntry(h, ids.get(h.name)!.publicKey)),
    };
    for (const host of [mac, linux]) {
      const data = join(host.runDir, "potluck");
      mkdirSync(join(data, "models"), { recursive: true, mode: 0o700 });
      writeFileSync(join(data, "identity-ed25519.pem"), ids.get(host.name)!.privateKeyPem, { mode: 0o600 });
      chmodSync(join(data, "identity-ed25519.pem"), 0o600);
      writeFileSync(join(host.runDir, "roster.json"), JSON.stringify(roster));
    }
    const linuxModels = join(linux.runDir, "potluck", "models");
    copyFileSync(o.modelPath, join(linuxModels, `${o.modelId}.gguf`));
    const start = (
      host: LabHost,
      models: string,
      sidecarPort = port,
      env: NodeJS.ProcessEnv = {},
      dataDir = join(host.runDir, "potluck"),
    ) =>
      host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
        cwd: repoRoot,
        env: {
          POTLUCK_MACHINE: host.name,
          POTLUCK_DATA_DIR: dataDir,
          POTLUCK_ROSTER_FILE: join(host.runDir, "roster.json"),
          POTLUCK_MODELS: models,
          POTLUCK_THREADS: "1",
          POTLUCK_CONTEXT_SIZE: "2048",
          POTLUCK_PORT: String(sidecarPort),
          POTLUCK_CPU_PIN: o.cpus === undefined ? "off" : "auto",
          ...env,
        },
      });
    const variants = (o.variants ?? []).map((v, i) => ({ ...v, port: variantPortBase + i }));
    start(linux, linuxModels);
    start(mac, join(mac.runDir, "potluck", "models"));
    for (const v of variants) {
      // Its own data dir (memory store), with mac's identity key: the roster knows that one.
      const dataDir = join(mac.runDir, `potluck-${v.port}`);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      copyFileSync(join(mac.runDir, "potluck", "identity-ed25519.pem"), join(dataDir, "identity-ed25519.pem"));
      chmodSync(join(dataDir, "identity-ed25519.pem"), 0o600);
      start(mac, join(mac.runDir, "potluck", "models"), v.port, v.env, dataDir);
    }
    const ready: Array<[LabHost, number]> = [
      [mac, port],
      [linux, port],
      ...variants.map((v): [LabHost, number] => [mac, v.port]),
    ];
    for (const [host, sidecarPort] of ready) {
      const ok = await pollUntil(
        async () =>
          (await host.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/health`])).stdout.includes('"ok"'),
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      if (!ok) throw new Error(`sidecar on ${host.name}:${sidecarPort} did not become ready`);
    }
    // The bench measures a mesh that carries traffic, not its bring-up: once, a first routing
    // probe found potluck0 not yet passing packets and the run died on a 503 in its warm-up.
    const meshUp = await pollUntil(
      async () =>
        (await mac.exec(["curl", "-sf", "-m", "2", `http://${linux.meshIp}:${port}/health`])).stdout.includes('"ok"'),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    if (!meshUp) throw new Error(`linux's sidecar is not reachable from mac over the mesh (${linux.meshIp})`);
    // The delay is undone with the lab.
    if (o.latencyMs !== undefined && o.latencyMs > 0) await delayMeshPath(mac, linux, o.latencyMs);
    const bare = linux.spawn(
      "bare-stream",
      [
        process.execPath,
        "--import",
        "tsx",
        bareStream,
        join(linuxModels, `${o.modelId}.gguf`),
        String(barePort),
        String(o.contextSize),
        String(coalesceWindowMs),
        o.prompt,
      ],
      { cwd: repoRoot },
    );
    if (!(await pollUntil(() => bare.output().includes("listening"), { timeoutMs: 180_000, intervalMs: 200 })))
      throw new Error(`bare stream on linux did not start: ${bare.output().slice(-1000)}`);
    // One long-lived client per path inside mac's namespace, warm like the local path's client.
    const inMac = async (what: string, script: string, args: string[]) => {
      const argv = [...pinArgv(o.cpus?.mac), "ip", "netns", "exec", mac.netns, process.execPath, "--import", "tsx"];
      const common = ["--model", o.modelId, "--max-tokens", String(o.maxTokens), "--prompt", o.prompt];
      const started = await startLineDriven(what, [...argv, script, ...args, ...common], {
        cwd: repoRoot,
        env: { ...process.env, [labIdEnv]: lab.id },
      });
      clients.push(started);
      return started;
    };
    const clientIn = (url: string) => inMac(`bench client in mac for ${url}`, client, ["--stdin", "--url", url]);
    // Signed with mac's own identity straight to linux's sidecar: no sidecar on mac in between.
    const directIn = (mode: "infer" | "probe") =>
      inMac(`signed /peer/${mode} from mac`, peerDirect, [
        "--mode",
        mode,
        "--identity",
        join(mac.runDir, "potluck", "identity-ed25519.pem"),
        "--machine",
        mac.name,
        "--target",
        linux.name,
        "--url",
        `http://${linux.meshIp}:${port}`,
      ]);
    const peer = await clientIn(`http://127.0.0.1:${port}`);
    const floor = await clientIn(`http://${linux.meshIp}:${barePort}`);
    const direct = await directIn("infer");
    const probe = await directIn("probe");
    const more: LabPath[] = [];
    for (const v of variants) {
      const client = await clientIn(`http://127.0.0.1:${v.port}`);
      more.push({ name: v.name, once: () => client.once() });
    }
    return {
      paths: [
        { name: "peer over lab mesh", once: () => peer.once() },
        { name: "floor: bare stream, mesh", once: () => floor.once() },
        { name: "signed /peer/infer from mac", once: () => direct.once() },
        { name: "probe: signed, large, model", component: true, once: () => probe.once() },
        ...more,
      ],
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
