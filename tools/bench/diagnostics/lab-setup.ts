import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { DiagnosticsReport, type Roster, type RosterEntry } from "@potluck/protocol";
import { generateIdentity } from "@potluck/peer";
import {
  createLab,
  httpFrom,
  type Lab,
  type LabHost,
  type LabProcess,
  labRosterEntry,
  pollUntil,
} from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";

/**
 * A two-machine household in the lab (mac asks, linux serves), with real sidecars on both and the
 * diagnostics runner (path-check.ts) executed inside mac's namespace. Shared by the lab tests and
 * the bench so both measure the same thing.
 */
export const sidecarPort = 8321;
const runner = join(repoRoot, "tools/bench/diagnostics/path-check.ts");
/** A sidecar on a loaded 2-core machine can take a while to load tsx and the tiny model. */
const sidecarReadyMs = 120_000;

export interface CheckLine {
  atMs: number;
  /** How long this one check took, inside the runner. */
  durationMs: number;
  report: DiagnosticsReport;
}

export interface DiagnosticsLab {
  lab: Lab;
  mac: LabHost;
  linux: LabHost;
  /** Roster files written on mac: the real one and variants for roster scenarios. */
  rosters: { normal: string; staleLinux: string };
  startSidecar(host: LabHost, env?: NodeJS.ProcessEnv): Promise<LabProcess>;
  /** Waits until linux's sidecar answers over the mesh from mac. */
  linuxReady(timeoutMs?: number): Promise<boolean>;
  /** Runs the diagnostics runner in mac; returns every check it printed. */
  check(options?: CheckOptions): Promise<CheckLine[]>;
  /** The runner's argv, for a caller that spawns it and reads its lines as they come. */
  checkArgv(options?: CheckOptions): string[];
  teardown(): Promise<void>;
}

export interface CheckOptions {
  peer?: string;
  /** Stop at the first report whose firstFailure is this layer ("usable": the first usable one). */
  until?: string;
  watchMs?: number;
  intervalMs?: number;
  roster?: string;
  coordinator?: string;
  /** Skip the first-token reuse and every cache: each check is a full one. */
  fresh?: boolean;
  /** Also time this many plain GET /health round trips to the peer first (a baseline). */
  baseline?: number;
}

export async function createDiagnosticsLab(): Promise<DiagnosticsLab> {
  const lab = await createLab({ hosts: ["mac", "linux"] });
  try {
    return await setUp(lab);
  } catch (error) {
    await lab.teardown();
    throw error;
  }
}

async function setUp(lab: Lab): Promise<DiagnosticsLab> {
  const mac = lab.host("mac");
  const linux = lab.host("linux");
  const identities = new Map([mac, linux].map((host) => [host.name, generateIdentity()]));
  const entries = [mac, linux].map((host) => labRosterEntry(host, identities.get(host.name)!.publicKey));
  const writeRoster = (host: LabHost, name: string, machines: RosterEntry[]) => {
    const path = join(host.runDir, name);
    const roster: Roster = { version: 1, machines };
    writeFileSync(path, JSON.stringify(roster));
    return path;
  };
  const dataDir = (host: LabHost) => join(host.runDir, "potluck");
  for (const host of [mac, linux]) {
    mkdirSync(dataDir(host), { recursive: true, mode: 0o700 });
    const pem = join(dataDir(host), "identity-ed25519.pem");
    writeFileSync(pem, identities.get(host.name)!.privateKeyPem, { mode: 0o600 });
    chmodSync(pem, 0o600);
    writeRoster(host, "roster.json", entries);
  }
  const rosters = {
    normal: join(mac.runDir, "roster.json"),
    staleLinux: writeRoster(
      mac,
      "roster-stale.json",
      entries.map((e) => (e.name === "linux" ? { ...e, staleKey: true } : e)),
    ),
  };
  const natsPrefix = `t${randomBytes(5).toString("hex")}`;
  const startSidecar = async (host: LabHost, env: NodeJS.ProcessEnv = {}) => {
    const proc = host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
      cwd: repoRoot,
      env: {
        POTLUCK_MACHINE: host.name,
        POTLUCK_OWNER: "home",
        POTLUCK_DATA_DIR: dataDir(host),
        POTLUCK_ROSTER_FILE: join(host.runDir, "roster.json"),
        POTLUCK_PORT: String(sidecarPort),
        POTLUCK_BIND: "0.0.0.0",
        POTLUCK_THREADS: "1",
        POTLUCK_NATS_PREFIX: natsPrefix,
        ...env,
      },
    });
    const ready = await pollUntil(
      async () =>
        (await host.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/health`], { timeoutMs: 5_000 })).code === 0,
      { timeoutMs: sidecarReadyMs, intervalMs: 500 },
    );
    if (!ready)
      throw new Error(
        `the sidecar on ${host.name} did not answer within ${sidecarReadyMs / 1000} s: ${proc.output().slice(-2000)}`,
      );
    return proc;
  };
  await Promise.all([startSidecar(mac), startSidecar(linux)]);
  const linuxReady = (timeoutMs = sidecarReadyMs) =>
    pollUntil(
      async () => (await httpFrom(mac, `http://${linux.meshIp}:${sidecarPort}/health`, { timeoutMs: 3_000 })).ok,
      { timeoutMs, intervalMs: 500 },
    );
  const checkArgv = (options: CheckOptions = {}) => {
    const argv = [
      process.execPath,
      "--import",
      "tsx",
      runner,
      "--from",
      "mac",
      "--peer",
      options.peer ?? "linux",
      "--roster",
      options.roster ?? rosters.normal,
      "--identity",
      join(dataDir(mac), "identity-ed25519.pem"),
      "--local-url",
      `http://127.0.0.1:${sidecarPort}`,
      "--watch-ms",
      String(options.watchMs ?? 0),
      "--interval-ms",
      String(options.intervalMs ?? 500),
    ];
    if (options.until !== undefined) argv.push("--until", options.until);
    if (options.coordinator !== undefined) argv.push("--coordinator", options.coordinator);
    if (options.fresh === true) argv.push("--fresh");
    if (options.baseline !== undefined) argv.push("--baseline", String(options.baseline));
    return argv;
  };
  const check = async (options: CheckOptions = {}) => {
    const result = await mac.exec(checkArgv(options), { cwd: repoRoot, timeoutMs: (options.watchMs ?? 0) + 120_000 });
    const lines = parseCheckLines(result.stdout);
    if (lines.length === 0)
      throw new Error(`path-check printed nothing (exit ${result.code}): ${result.stderr.slice(-2000)}`);
    return lines;
  };
  return { lab, mac, linux, rosters, startSidecar, linuxReady, check, checkArgv, teardown: () => lab.teardown() };
}

/** The report lines the runner printed (a baseline line, if any, is skipped). */
export function parseCheckLines(stdout: string): CheckLine[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith('{"atMs"'))
    .map((line) => {
      const parsed = JSON.parse(line) as { atMs: number; durationMs: number; report: unknown };
      return { atMs: parsed.atMs, durationMs: parsed.durationMs, report: DiagnosticsReport.parse(parsed.report) };
    });
}
