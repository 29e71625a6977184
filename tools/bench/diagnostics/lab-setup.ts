import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { DiagnosticsReport, type Roster, type RosterEntry } from "@potluck/protocol";
import {
  createLab,
  httpFrom,
  type Lab,
  type LabHost,
  type LabProcess,
  labRosterFile,
  labSidecarDataDir,
  pollUntil,
  seedRosterHousehold,
  startRosterSidecar,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

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
  const { roster } = seedRosterHousehold([mac, linux]);
  const writeRoster = (host: LabHost, name: string, machines: RosterEntry[]) => {
    const path = join(host.runDir, name);
    writeFileSync(path, JSON.stringify({ ...roster, machines } satisfies Roster));
    return path;
  };
  const rosters = {
    normal: labRosterFile(mac),
    staleLinux: writeRoster(
      mac,
      "roster-stale.json",
      roster.machines.map((e) => (e.name === "linux" ? { ...e, staleKey: true } : e)),
    ),
  };
  const natsPrefix = `t${randomBytes(5).toString("hex")}`;
  // Both on one subject root, and reachable over the mesh (the runner calls linux from mac).
  const startSidecar = (host: LabHost, env: NodeJS.ProcessEnv = {}) =>
    startRosterSidecar(host, { POTLUCK_BIND: "0.0.0.0", POTLUCK_NATS_PREFIX: natsPrefix, ...env }, sidecarPort);
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
      join(labSidecarDataDir(mac), "identity-ed25519.pem"),
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
