import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { MeshState, Roster } from "@potluck/protocol";
import { runOrThrow, type Runner, type RunResult } from "../exec.js";
import type { PeerPlan } from "../peers.js";
import type { RelayTracker } from "../relay.js";

/** The mesh backends: one per way a machine can carry the mesh (see index.ts for how one is chosen). */
export const backendNames = ["linux", "darwin", "windows", "external"] as const;
export type BackendName = (typeof backendNames)[number];

/**
 * One thing a backend does to the machine. Argv elements may name a variable (`$UTUN`) that an
 * earlier `read` step sets: macOS's kernel chooses the utun number, so it is known only when the
 * tunnel exists. A plan printed by --dry-run shows the variable, as a user typing it in a shell would.
 */
export type Step =
  | {
      kind: "run";
      argv: string[];
      why: string;
      /** Tried when `argv` fails (kernel WireGuard missing: wireguard-go instead). */
      orElse?: string[];
      /** Its failure is expected and harmless (removing what may not exist). */
      mayFail?: boolean;
      /** With mayFail: the failure is tolerated but costs something; this is told to the user (`PlanEffects.warn`). */
      lostIfFails?: string;
    }
  /** Polls `argv` until it succeeds: a daemon's socket appearing. */
  | { kind: "wait"; argv: string[]; why: string; timeoutMs: number }
  /** `secret`: this text, not the content, stands for the private key when the plan is printed. */
  | { kind: "write"; path: string; mode: number; content: string; why: string; secret?: { key: string; from: string } }
  /** Sets `$variable` to the trimmed content of `path`, waiting for it to appear. */
  | { kind: "read"; variable: string; path: string; why: string; timeoutMs: number };

export interface Plan {
  backend: BackendName;
  steps: Step[];
  /** How a user reads and follows it by hand: a POSIX shell, or Windows' command prompt. */
  shell: "sh" | "cmd";
  /** The OS's name for the tunnel once up, when known before running (`$UTUN` on macOS until then). */
  device: string | null;
  /** What the plan changes among the peers (Linux and macOS keep a direct peer per machine). */
  peers: PeerPlan;
  /** Lines for the user: what to do with a spoke config, what the plan cannot do for them. */
  notes: string[];
}

/** Read-only looks at the machine, made while planning; --dry-run makes them too. */
export interface Probe {
  run: Runner;
  exists(path: string): boolean;
  readFile(path: string): string | null;
}

export interface PlanInput {
  state: MeshState;
  roster: Roster;
  dataDir: string;
  privateKeyPath: string;
  /** The private key itself, for the backends that hand a config file to another program. */
  privateKey(): string;
  probe: Probe;
  /** external: where the wg-quick config goes (default DATA_DIR/mesh/potluck0.conf). */
  configOut?: string;
  /** linux, while following the roster: the direct-then-hub choice per peer (relay.ts). */
  relay?: RelayTracker;
}

export interface MeshBackend {
  name: BackendName;
  /**
   * Whether the tunnel follows roster changes. Spokes (windows, external) do not: their one peer
   * is the hub with the whole mesh as AllowedIPs, so their config never changes as machines come
   * and go, and the agent only keeps the roster file current.
   */
  followsRoster: boolean;
  plan(input: PlanInput): Promise<Plan>;
}

export const emptyPeerPlan = (): PeerPlan => ({ set: [], remove: [] });

/** The probe for this machine: commands through the runner, files through node:fs. */
export function machineProbe(run: Runner): Probe {
  return {
    run,
    exists: (path) => existsSync(path),
    readFile: (path) => {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return null;
      }
    },
  };
}

export interface PlanEffects {
  run: Runner;
  /** Writes a file with `mode`; injected so tests can keep writes in memory. */
  writeFile?(path: string, content: string, mode: number): void;
  readFile?(path: string): string | null;
  sleep?(ms: number): Promise<void>;
  /** Told what a tolerated failure costs (a step's `lostIfFails`); unset, nobody is told. */
  warn?(message: string): void;
}

const pollMs = 100;

/** Runs a plan's steps in order; returns the variables its `read` steps set. Throws at the first failure. */
export async function executePlan(plan: Plan, effects: PlanEffects): Promise<Record<string, string>> {
  const vars: Record<string, string> = {};
  const sleep = effects.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const readFile = effects.readFile ?? machineProbe(effects.run).readFile;
  const writeFile = effects.writeFile ?? writeFileAtomic;
  const fill = (argv: readonly string[]) => argv.map((a) => a.replace(/\$([A-Z_]+)/g, (m, v: string) => vars[v] ?? m));
  for (const step of plan.steps) {
    if (step.kind === "run") {
      const argv = fill(step.argv);
      const result = await effects.run(argv);
      if (result.code === 0) continue;
      if (step.mayFail === true) {
        if (step.lostIfFails !== undefined)
          effects.warn?.(`${step.lostIfFails}: \`${argv.join(" ")}\` exited ${result.code}: ${complaint(result)}`);
        continue;
      }
      if (step.orElse === undefined)
        throw new Error(`${step.why}: \`${argv.join(" ")}\` exited ${result.code}: ${complaint(result)}`);
      await runOrThrow(effects.run, step.why, fill(step.orElse));
    } else if (step.kind === "wait") {
      const argv = fill(step.argv);
      const deadline = Date.now() + step.timeoutMs;
      while ((await effects.run(argv)).code !== 0) {
        if (Date.now() > deadline)
          throw new Error(`${step.why}: \`${argv.join(" ")}\` did not succeed within ${step.timeoutMs / 1000} s`);
        await sleep(pollMs);
      }
    } else if (step.kind === "read") {
      const deadline = Date.now() + step.timeoutMs;
      let text = readFile(step.path);
      while (text === null || text.trim() === "") {
        if (Date.now() > deadline)
          throw new Error(`${step.why}: ${step.path} did not appear within ${step.timeoutMs / 1000} s`);
        await sleep(pollMs);
        text = readFile(step.path);
      }
      vars[step.variable] = text.trim();
    } else writeFile(step.path, step.content, step.mode);
  }
  return vars;
}

function complaint(result: RunResult): string {
  return (result.stderr || result.stdout).trim().slice(0, 500);
}

/** Write-then-rename with the mode from the start, so a key-bearing file is never readable by others. */
function writeFileAtomic(path: string, content: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}
