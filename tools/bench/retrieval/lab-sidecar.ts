import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Roster, type RosterEntry } from "@potluck/protocol";
import { generateIdentity } from "@potluck/peer";
import { createLexicalEmbedder, MemoryStore } from "@potluck/sidecar/memory";
import { createLab, type Lab, type LabHost, type LabProcess } from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";
import type { ClientAnswer, ClientJob, ClientRequest } from "./peer-client.js";

/** A client job without the connection fields the lab fills in; `url` defaults to linux's sidecar over the mesh. */
type JobBody = ClientJob extends infer J
  ? J extends ClientJob
    ? Omit<J, "url" | "machine" | "target" | "keyPem"> & { url?: string }
    : never
  : never;

const clientScript = join(repoRoot, "tools/bench/retrieval/peer-client.ts");
const sidecarPort = 8321;
/** The floor server: a bare node:http answer, the least any HTTP request between two hosts costs. */
const floorPort = 8322;
// GET /?bytes=N answers N bytes (at most 64 KiB): a body the size of a search answer, to tell
// the mesh's per-packet cost from ours. &busyUs=M first keeps the CPU busy for M µs (at most
// 100 ms), as long as the sidecar computes per search: wireguard-go's threads wake on every
// packet and preempt whatever runs on a 2-core box, so the mesh costs a busy server more than
// an idle one, and that part is the mesh's, not ours.
const floorScript = `require("node:http").createServer((req, res) => { const q = new URL(req.url, "http://x").searchParams; const n = Math.min(65536, Number(q.get("bytes")) || 2); const busyMs = Math.min(100, Number(q.get("busyUs")) / 1000 || 0); req.resume(); req.on("end", () => { const until = performance.now() + busyMs; while (performance.now() < until); res.end("x".repeat(n)); }); }).listen(${floorPort}, "0.0.0.0", () => console.log("listening"));`;
/** A sidecar starting under tsx on a loaded 2-core machine (and building an ANN index) takes a while. */
const startTimeoutMs = 15 * 60_000;

/**
 * Two lab hosts on the WireGuard mesh: "linux" runs the real sidecar (memory store in its data
 * dir, static roster naming both machines' identity keys), "mac" is the calling machine. Used by
 * the retrieval bench's peer path and the memory e2e test.
 */
export interface MemoryLab {
  lab: Lab;
  mac: LabHost;
  linux: LabHost;
  linuxUrl: string;
  /**
   * Starts (or restarts) the linux sidecar and waits until its memory store answers on loopback and its models have
   * loaded.
   */
  start(env?: NodeJS.ProcessEnv): Promise<void>;
  stop(): Promise<void>;
  /** Starts a sidecar on mac too (same roster), for fleet searches that start there. */
  startMac(env?: NodeJS.ProcessEnv): Promise<void>;
  /** Adds memories to linux's store on disk (the sidecar must be stopped). */
  populate(texts: readonly string[], project: string): Promise<void>;
  /** Runs peer-client.ts inside mac. */
  fromMac(job: JobBody): Promise<unknown>;
  /** Runs peer-client.ts inside linux (its own loopback: no network between the two processes). */
  fromLinux(job: JobBody): Promise<unknown>;
  /** Starts the bare HTTP floor server on linux (idempotent); URLs to reach it and the sidecar each way. */
  startFloor(): Promise<void>;
  /**
   * CPU time (ms) the linux sidecar's main thread has used so far, from the kernel's schedstat:
   * read before and after a timed run, it says how long the sidecar computes per request.
   */
  sidecarCpuMs(): Promise<number>;
  urls: {
    meshSidecar: string;
    underlaySidecar: string;
    loopbackSidecar: string;
    meshFloor: string;
    underlayFloor: string;
    loopbackFloor: string;
  };
  requestsFromMac(requests: ClientRequest[]): Promise<ClientAnswer[]>;
  /** A command inside linux (or mac) against its own loopback sidecar (the local API). */
  onLinux(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  onMac(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  sidecarOutput(): string;
  teardown(): Promise<void>;
}

export async function createMemoryLab(): Promise<MemoryLab> {
  const lab = await createLab({ hosts: ["mac", "linux"] });
  try {
    return setUp(lab);
  } catch (error) {
    await lab.teardown();
    throw error;
  }
}

/** One host's sidecar: its data dir holds its identity key; the roster names both machines. */
interface HostSidecar {
  host: LabHost;
  dataDir: string;
  rosterFile: string;
  proc: LabProcess | undefined;
}

function prepareHost(host: LabHost, privateKeyPem: string, roster: Roster): HostSidecar {
  const dataDir = join(host.runDir, "data");
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, "identity-ed25519.pem"), privateKeyPem, { mode: 0o600 });
  const rosterFile = join(host.runDir, "roster.json");
  writeFileSync(rosterFile, JSON.stringify(roster));
  return { host, dataDir, rosterFile, proc: undefined };
}

async function startSidecar(side: HostSidecar, env: NodeJS.ProcessEnv): Promise<void> {
  await side.proc?.stop();
  const proc = side.host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
    env: {
      ...process.env,
      POTLUCK_DATA_DIR: side.dataDir,
      POTLUCK_MACHINE: side.host.name,
      POTLUCK_PORT: String(sidecarPort),
      POTLUCK_BIND: "0.0.0.0",
      POTLUCK_ROSTER_FILE: side.rosterFile,
      POTLUCK_PEER_MEMORY_ENABLED: "0",
      ...env,
    },
  });
  side.proc = proc;
  const started = Date.now();
  let exited: number | string | undefined;
  void proc.exited.then((code) => (exited = code));
  for (;;) {
    if (exited !== undefined)
      throw new Error(`${side.host.name} sidecar exited (${exited}): ${proc.output().slice(-2000)}`);
    const status = await side.host.exec(["curl", "-s", "-m", "5", `http://127.0.0.1:${sidecarPort}/memory/status`], {
      timeoutMs: 60_000,
    });
    const body = status.code === 0 ? safeJson(status.stdout) : undefined;
    // Warm too (/health "ok": models loaded): a model still loading competes for the 2 cores
    // with whatever is measured next, and a peer that has been up a while has long finished.
    if (body !== undefined && body.annPending === 0 && (await isWarm(side.host))) return;
    if (Date.now() - started > startTimeoutMs)
      throw new Error(
        `${side.host.name} sidecar's memory store did not answer within ${startTimeoutMs / 1000} s: ${proc.output().slice(-2000)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function setUp(lab: Lab): MemoryLab {
  const mac = lab.host("mac");
  const linux = lab.host("linux");
  const macId = generateIdentity();
  const linuxId = generateIdentity();
  const roster: Roster = {
    version: 1,
    machines: [rosterEntry(mac, macId.publicKey), rosterEntry(linux, linuxId.publicKey)],
  };
  const linuxSide = prepareHost(linux, linuxId.privateKeyPem, roster);
  const macSide = prepareHost(mac, macId.privateKeyPem, roster);
  const linuxUrl = `http://${linux.meshIp ?? ""}:${sidecarPort}`;
  const loaded = new Map<string, number>();
  let floor: LabProcess | undefined;
  const runClient = async (host: LabHost, job: JobBody) => {
    const full = { url: linuxUrl, ...job, machine: "mac", target: "linux", keyPem: macId.privateKeyPem } as ClientJob;
    const result = await host.exec([process.execPath, "--import", "tsx", clientScript], {
      input: JSON.stringify(full),
      timeoutMs: 30 * 60_000,
      cwd: repoRoot,
    });
    const line = result.stdout.trim().split("\n").pop() ?? "";
    const parsed = safeAny(line);
    if (result.code !== 0 || parsed === undefined)
      throw new Error(
        `peer client in ${host.name} exited ${result.code}: ${(result.stderr || result.stdout).slice(-1500)}`,
      );
    return parsed;
  };

  const memoryLab: MemoryLab = {
    lab,
    mac,
    linux,
    linuxUrl,
    start: (env = {}) => startSidecar(linuxSide, env),
    async stop() {
      await linuxSide.proc?.stop();
      linuxSide.proc = undefined;
    },
    startMac: (env = {}) => startSidecar(macSide, env),
    async populate(texts, project) {
      const from = loaded.get(project) ?? 0;
      if (from >= texts.length) return;
      // This short-lived writer never builds an HNSW graph: the sidecar builds (and saves) its own.
      const store = await MemoryStore.open({
        dir: join(linuxSide.dataDir, "memory"),
        embedder: createLexicalEmbedder(),
        ann: { thresholdRows: Number.MAX_SAFE_INTEGER },
        persistAnn: false,
      });
      try {
        for (let i = from; i < texts.length; i += 5_000) {
          await store.addMany(
            texts
              .slice(i, Math.min(texts.length, i + 5_000))
              .map((text) => ({ text, project, tags: [], confidence: 1, pinned: false })),
          );
        }
      } finally {
        store.close();
      }
      loaded.set(project, texts.length);
    },
    fromMac: (job) => runClient(mac, job),
    fromLinux: (job) => runClient(linux, job),
    async startFloor() {
      if (floor !== undefined) return;
      const proc = linux.spawn("floor", [process.execPath, "-e", floorScript]);
      floor = proc;
      const started = Date.now();
      while (!proc.output().includes("listening")) {
        if (Date.now() - started > 60_000)
          throw new Error(`floor server on linux did not listen within 60 s: ${proc.output().slice(-500)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async sidecarCpuMs() {
      const pid = linuxSide.proc?.pid;
      if (pid === undefined) throw new Error("the linux sidecar is not running");
      // The lab execs the service in place (ip netns exec, unshare, sh -c 'exec …'), so the pid is node's.
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.includes(serviceEntry.sidecar))
        throw new Error(`pid ${pid} is not the sidecar: ${cmdline.replaceAll("\0", " ").slice(0, 200)}`);
      // schedstat: time on CPU (ns), time waiting to run (ns), timeslices.
      return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
    },
    urls: {
      meshSidecar: linuxUrl,
      underlaySidecar: `http://${linux.underlayIp}:${sidecarPort}`,
      loopbackSidecar: `http://127.0.0.1:${sidecarPort}`,
      meshFloor: `http://${linux.meshIp ?? ""}:${floorPort}`,
      underlayFloor: `http://${linux.underlayIp}:${floorPort}`,
      loopbackFloor: `http://127.0.0.1:${floorPort}`,
    },
    async requestsFromMac(requests) {
      return (await memoryLab.fromMac({ mode: "requests", requests })) as ClientAnswer[];
    },
    onLinux: (argv) => linux.exec(argv, { timeoutMs: 120_000 }),
    onMac: (argv) => mac.exec(argv, { timeoutMs: 120_000 }),
    sidecarOutput: () => linuxSide.proc?.output() ?? "",
    async teardown() {
      await floor?.stop().catch(() => undefined);
      await macSide.proc?.stop().catch(() => undefined);
      await linuxSide.proc?.stop().catch(() => undefined);
      await lab.teardown();
    },
  };
  return memoryLab;
}

function rosterEntry(host: LabHost, identityPublicKey: string): RosterEntry {
  return {
    id: `lab-${host.name}`,
    name: host.name,
    owner: "home",
    meshIp: host.meshIp ?? "",
    wireguardPublicKey: (host.wgPublicKey ?? "") as RosterEntry["wireguardPublicKey"],
    identityPublicKey: identityPublicKey as RosterEntry["identityPublicKey"],
    endpoints: [],
    state: "online",
    lastHeartbeatAt: null,
    staleKey: false,
  };
}

async function isWarm(host: LabHost): Promise<boolean> {
  const health = await host.exec(["curl", "-s", "-m", "5", `http://127.0.0.1:${sidecarPort}/health`], {
    timeoutMs: 60_000,
  });
  const body = health.code === 0 ? safeAny(health.stdout) : undefined;
  return typeof body === "object" && body !== null && (body as { status?: unknown }).status === "ok";
}

function safeJson(text: string): { annPending: number } | undefined {
  const value = safeAny(text);
  return typeof value === "object" && value !== null ? (value as { annPending: number }) : undefined;
}

function safeAny(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
