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
 * A roster file in the coordinator's `Roster` schema. Re-read when its modification time changes,
 * so editing it needs no restart; a broken file keeps the last good roster and says why once.
 */
export function rosterFileDirectory(options: {
  path: string;
  self: string;
  peerPort: number;
  urlOverrides?: ReadonlyMap<string, string>;
  log?: (message: string) => void;
}): PeerDirectory {
  const { path, self, peerPort, urlOverrides = new Map(), log = () => undefined } = options;
  let cached: { mtimeMs: number; entries: RosterEntry[] } | undefined;
  const entries = async (): Promise<RosterEntry[]> => {
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
  return directoryOver(entries, { self, peerPort, urlOverrides });
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
    keyFor: async (machine) => (await entries()).find((e) => e.name === machine || e.id === machine)?.identityPublicKey,
  };
}
