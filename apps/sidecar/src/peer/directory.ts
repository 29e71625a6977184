import { readFile, stat } from "node:fs/promises";
import { Roster, type RosterEntry } from "@potluck/protocol";

/** A machine this sidecar may call or be called by. */
export interface PeerRecord {
  machine: string;
  owner: string;
  /** Base URL of its sidecar over the mesh, e.g. http://100.64.0.3:8321 */
  url: string;
  identityPublicKey: string;
}

/**
 * Who is on the mesh and which key each machine signs with: a static roster file, or the
 * coordinator's roster, behind the same interface.
 */
export interface PeerDirectory {
  /** Every other machine (never this one). */
  peers(): Promise<PeerRecord[]>;
  /** The identity key a machine signs with, or undefined when it is not on the roster. */
  keyFor(machine: string): Promise<string | undefined>;
}

/** An empty directory: a machine alone, before it joins a mesh. */
export const noPeers: PeerDirectory = { peers: async () => [], keyFor: async () => undefined };

/**
 * How often a roster file's modification time is checked. Every signed peer request looks up its
 * signer's key, and an async stat on each was a thread-pool round trip: in the lab, a signed peer
 * memory search took 0.94 ms of the sidecar's main-thread CPU and 5 context switches with it,
 * 0.60 ms and 1.3 without. The check runs in the background while the roster in hand answers, so
 * no request waits on the disk (a routed prompt's first token did, every second or so). An
 * unknown signer checks at once, so a machine just added to the file is not refused meanwhile; a
 * changed key of a known machine is seen within this interval and one request.
 */
export const RosterFileLimits = { recheckMs: 1_000 } as const;

/**
 * A roster file in the coordinator's `Roster` schema. Re-read when its modification time changes
 * (checked at most every `recheckMs`, and at once for an unknown machine), so editing it needs no
 * restart; a broken file keeps the last good roster and says why once.
 */
export function rosterFileDirectory(options: {
  path: string;
  self: string;
  peerPort: number;
  urlOverrides?: ReadonlyMap<string, string>;
  log?: (message: string) => void;
  limits?: Partial<typeof RosterFileLimits>;
  /** Clock in epoch ms; tests move it instead of waiting. */
  now?: () => number;
}): PeerDirectory {
  const { path, self, peerPort, urlOverrides = new Map(), log = () => undefined, now = Date.now } = options;
  const limits = { ...RosterFileLimits, ...options.limits };
  let cached: { mtimeMs: number; entries: RosterEntry[] } | undefined;
  let checkedAtMs = Number.NEGATIVE_INFINITY;
  const reread = async (): Promise<RosterEntry[]> => {
    checkedAtMs = now();
    try {
      const { mtimeMs } = await stat(path);
      if (cached?.mtimeMs === mtimeMs) return cached.entries;
      const parsed = Roster.safeParse(JSON.parse(await readFile(path, "utf8")));
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)[0] ?? "invalid roster");
      cached = { mtimeMs, entries: parsed.data.machines };
    } catch (error) {
      log(`reading roster ${path}: ${error instanceof Error ? error.message : String(error)}${cached === undefined ? "" : "; keeping the last good roster"}`);
      if (cached === undefined) return [];
    }
    return cached.entries;
  };
  // One check at a time; only a directory with no roster yet waits for it.
  let inflight: Promise<RosterEntry[]> | undefined;
  const refresh = (): Promise<RosterEntry[]> => (inflight ??= reread().finally(() => (inflight = undefined)));
  const entries = async (): Promise<RosterEntry[]> => {
    if (cached === undefined) return refresh();
    if (now() - checkedAtMs >= limits.recheckMs) void refresh();
    return cached.entries;
  };
  const base = directoryOver(entries, { self, peerPort, urlOverrides });
  return {
    peers: base.peers,
    keyFor: async (machine) => (await base.keyFor(machine)) ?? keyIn(await refresh(), machine),
  };
}

/** Roster refresh interval from the coordinator; an unknown signer triggers one early refresh. */
export const CoordinatorRosterLimits = { refreshMs: 10_000, earlyRefreshMinMs: 2_000, fetchTimeoutMs: 5_000 } as const;

/**
 * The coordinator's roster (GET /v1/roster), refreshed in the background once older than
 * `refreshMs` (the cached one keeps answering meanwhile). A machine that enrolled a
 * moment ago may sign before the next refresh, so an unknown key refreshes early (at most every
 * `earlyRefreshMinMs`, so unknown callers cannot make this machine hammer the coordinator). When
 * the coordinator is unreachable, the last good roster is kept and the failure logged.
 */
export function coordinatorDirectory(options: {
  url: string;
  self: string;
  peerPort: number;
  urlOverrides?: ReadonlyMap<string, string>;
  log?: (message: string) => void;
  limits?: Partial<Record<keyof typeof CoordinatorRosterLimits, number>>;
}): PeerDirectory {
  const { url, self, peerPort, urlOverrides = new Map(), log = () => undefined } = options;
  const limits = { ...CoordinatorRosterLimits, ...options.limits };
  let cached: { atMs: number; entries: RosterEntry[] } | undefined;
  const fetchRoster = async (): Promise<RosterEntry[]> => {
    try {
      const res = await fetch(`${url.replace(/\/$/, "")}/v1/roster`, { signal: AbortSignal.timeout(limits.fetchTimeoutMs) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const parsed = Roster.safeParse(await res.json());
      if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? "invalid roster");
      cached = { atMs: Date.now(), entries: parsed.data.machines };
    } catch (error) {
      log(`reading roster from ${url}: ${error instanceof Error ? error.message : String(error)}${cached === undefined ? "" : "; keeping the last good roster"}`);
      if (cached !== undefined) cached = { ...cached, atMs: Date.now() };
    }
    return cached?.entries ?? [];
  };
  // One fetch at a time, and a stale roster is served while it runs: a request to this sidecar
  // must never wait on the coordinator when a roster is in hand. (A path to the coordinator that
  // eats large packets stalled every signed peer call here for the fetch timeout, and the caller's
  // diagnostics named that a firewall.) Only a sidecar with no roster yet waits for one.
  let inflight: Promise<RosterEntry[]> | undefined;
  const refresh = (): Promise<RosterEntry[]> => (inflight ??= fetchRoster().finally(() => (inflight = undefined)));
  const entries = async (): Promise<RosterEntry[]> => {
    if (cached === undefined) return refresh();
    if (Date.now() - cached.atMs >= limits.refreshMs) void refresh();
    return cached.entries;
  };
  const base = directoryOver(entries, { self, peerPort, urlOverrides });
  return {
    peers: base.peers,
    keyFor: async (machine) => {
      const key = await base.keyFor(machine);
      if (key !== undefined || (cached !== undefined && Date.now() - cached.atMs < limits.earlyRefreshMinMs)) return key;
      await refresh();
      return base.keyFor(machine);
    },
  };
}

function directoryOver(entries: () => Promise<RosterEntry[]>, o: { self: string; peerPort: number; urlOverrides: ReadonlyMap<string, string> }): PeerDirectory {
  const toRecord = (entry: RosterEntry): PeerRecord => ({
    machine: entry.name,
    owner: entry.owner,
    url: o.urlOverrides.get(entry.name) ?? `http://${entry.meshIp}:${o.peerPort}`,
    identityPublicKey: entry.identityPublicKey,
  });
  return {
    peers: async () => (await entries()).filter((e) => e.name !== o.self).map(toRecord),
    keyFor: async (machine) => keyIn(await entries(), machine),
  };
}

function keyIn(entries: readonly RosterEntry[], machine: string): string | undefined {
  return entries.find((e) => e.name === machine || e.id === machine)?.identityPublicKey;
}
