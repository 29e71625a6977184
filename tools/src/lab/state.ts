import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { labDir, labRootDir, stateFile } from "./names.js";
import { releaseSubnets } from "./rootlink.js";

/** What a lab records on disk so the CLI (`lab exec`, `lab down`) and cleanup can find it. */
export interface LabState {
  id: string;
  ownerPid: number;
  /** Start time of the owner (clock ticks since boot) so a reused pid is not mistaken for the owner. */
  ownerStart: number | null;
  /** Set by `potluck lab up`: the lab the CLI's exec/status/down act on. */
  cli: boolean;
  createdAt: string;
  lanNetns: string;
  underlayCidr: string;
  rootIp: string | null;
  hosts: {
    name: string;
    netns: string;
    underlayIp: string;
    meshIp: string | null;
    runDir: string;
    wgPublicKey: string | null;
  }[];
  /** Set by `potluck lab up --cluster` once the cluster is up: what a user needs to reach it. */
  cluster?: ClusterLabState;
}

/** A community on a NATS cluster in a lab (cluster-lab.ts): its addresses as the lab's hosts reach them. */
export interface ClusterLabState {
  /** Every NATS server, comma-separated, as POTLUCK_NATS_URL takes them. */
  natsUrl: string;
  prefix: string;
  coordinatorUrls: string[];
  ledgerUrls: string[];
  /** DATABASE_URL of the coordinators and of the ledgers, through the lab's root link. */
  databaseUrls: { coordinator: string; ledger: string };
  /** The ledgers' signing key, for `potluck ledger verify`. */
  ledgerKeyFile: string;
  /** The private PostgreSQL's data directory, so a lab whose owner died can still have it stopped. */
  postgres: { port: number; dataDir: string };
  /** The simulated machines heartbeating through the cluster. */
  machines: { name: string; owner: string }[];
}

/** Field 22 of /proc/PID/stat: the process start time, stable for the life of the process. */
export function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return null;
  }
}

export function ownerAlive(state: Pick<LabState, "ownerPid" | "ownerStart">): boolean {
  const start = processStart(state.ownerPid);
  return start !== null && (state.ownerStart === null || start === state.ownerStart);
}

export function writeState(state: LabState): void {
  mkdirSync(labDir(state.id), { recursive: true, mode: 0o700 });
  writeFileSync(stateFile(state.id), `${JSON.stringify(state, null, 2)}\n`);
}

export function readState(id: string): LabState | null {
  try {
    return JSON.parse(readFileSync(stateFile(id), "utf8")) as LabState;
  } catch {
    return null;
  }
}

export function listStates(): LabState[] {
  let ids: string[];
  try {
    ids = readdirSync(labRootDir());
  } catch {
    return [];
  }
  return ids.map(readState).filter((s): s is LabState => s !== null);
}

/** Removes the lab's directory and the log `potluck lab up` keeps beside it. */
export function removeLabDir(id: string): void {
  rmSync(labDir(id), { recursive: true, force: true });
  rmSync(join(labRootDir(), `${id}.log`), { force: true });
  releaseSubnets(id);
}
