import { readFile, stat } from "node:fs/promises";
import { CoordinatorAnswerHeaders, Roster, type RosterEntry } from "@potluck/protocol";
import { RosterLimits } from "./limits.js";
import { verifyCoordinatorAnswer } from "./signing-coordinator.js";

/**
 * Who is on the mesh and which keys each machine uses, as the one source every reader shares:
 * the sidecar's peer directory (routing, signature checks, fleet search) and diagnostics' roster
 * layer. The roster in hand answers at once; a change is picked up behind the answer (a file's
 * modification time, the coordinator's roster on an interval or when told it changed), and only
 * a source with no roster yet waits for one.
 */
export interface PeerRoster {
  /** Every machine, this one included. Throws only when no roster could ever be read. */
  entries(): Promise<readonly RosterEntry[]>;
  /**
   * A machine by name or id. One the roster in hand lacks (it may have joined a moment ago)
   * makes the source read the roster again now, bounded per source (see `RosterLimits`).
   */
  lookup(machine: string): Promise<RosterEntry | undefined>;
  /** The roster changed (the coordinator announced it): the next read starts a fresh one. */
  invalidate(): void;
}

/** The roster in hand could not be read and no earlier one is kept. */
export class RosterUnavailableError extends Error {
  override name = "RosterUnavailableError";
}

/** A roster file in the coordinator's `Roster` schema, re-read when its modification time changes. */
export function fileRoster(options: {
  path: string;
  log?: (message: string) => void;
  limits?: { recheckMs?: number };
  /** Clock in epoch ms; tests move it instead of waiting. */
  now?: () => number;
}): PeerRoster {
  const { path } = options;
  let mtimeMs: number | undefined;
  return cachedRoster({
    what: `roster ${path}`,
    recheckMs: options.limits?.recheckMs ?? RosterLimits.fileRecheckMs,
    // A stat is cheap: an unknown signer always looks again, so a machine just added is not refused.
    earlyRefreshMinMs: 0,
    log: options.log,
    now: options.now,
    read: async () => {
      const info = await stat(path);
      if (info.mtimeMs === mtimeMs) return "unchanged";
      if (info.size > RosterLimits.fileBytesMax) throw new Error(`larger than ${RosterLimits.fileBytesMax} bytes`);
      const machines = parseRoster(JSON.parse(await readFile(path, "utf8")));
      mtimeMs = info.mtimeMs;
      return machines;
    },
  });
}

/**
 * The coordinator's roster (GET /v1/roster), re-read once older than `refreshMs`, at once after
 * `invalidate()`, and early for an unknown machine. When the coordinator is unreachable, the last
 * good roster is kept and the failure logged. Every answer must be signed by the coordinator
 * (libs/peer signing-coordinator.ts): with `coordinatorKey` (pinned when the machine joined), by
 * that key; without one, by the key of the first signed answer, kept for the life of the source
 * (trust on first use, said in the log). An unsigned or wrongly signed roster is refused and the
 * last good one kept.
 *
 * `url` may list several coordinators of one hub (a community runs two or more on one database,
 * all signing with the hub's key): a read asks the one that answered last and, when it fails,
 * the others in order, so one coordinator down never leaves the reader on a stale roster.
 */
export function coordinatorRoster(options: {
  url: string | readonly string[];
  /** The hub's signing key (base64), pinned at enrollment (DATA_DIR/mesh/state.json). */
  coordinatorKey?: string;
  log?: (message: string) => void;
  limits?: { refreshMs?: number; earlyRefreshMinMs?: number; fetchTimeoutMs?: number };
  now?: () => number;
}): PeerRoster {
  const bases = (typeof options.url === "string" ? [options.url] : [...options.url]).map((u) => u.replace(/\/+$/, ""));
  if (bases.length === 0) throw new Error("coordinatorRoster: no coordinator URL");
  const fetchTimeoutMs = options.limits?.fetchTimeoutMs ?? RosterLimits.coordinatorFetchTimeoutMs;
  let pinned = options.coordinatorKey;
  /** The coordinator that answered last: asked first next time. */
  let preferred = 0;
  const readFrom = async (base: string): Promise<RosterEntry[]> => {
    const res = await fetch(`${base}/v1/roster`, { signal: AbortSignal.timeout(fetchTimeoutMs) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = new Uint8Array(await res.arrayBuffer());
    if (body.byteLength > RosterLimits.fileBytesMax) throw new Error(`larger than ${RosterLimits.fileBytesMax} bytes`);
    const header = (name: string) => res.headers.get(name);
    const check =
      pinned === undefined
        ? firstUse(body, header)
        : verifyCoordinatorAnswer({ path: "/v1/roster", body, header }, { publicKey: pinned });
    if (!check.ok) throw new Error(`refused: ${check.message}`);
    if (pinned === undefined)
      options.log?.(
        `pinned the coordinator key ${check.publicKey} on first use; give the key from DATA_DIR/mesh/state.json to pin it from the start`,
      );
    pinned = check.publicKey;
    return parseRoster(JSON.parse(Buffer.from(body).toString("utf8")));
  };
  return cachedRoster({
    what: `roster from ${bases.join(", ")}`,
    recheckMs: options.limits?.refreshMs ?? RosterLimits.coordinatorRefreshMs,
    earlyRefreshMinMs: options.limits?.earlyRefreshMinMs ?? RosterLimits.coordinatorEarlyRefreshMinMs,
    log: options.log,
    now: options.now,
    read: async () => {
      const failures: string[] = [];
      // One pass over the list, starting with the one that answered last.
      for (let k = 0; k < bases.length; k++) {
        const i = (preferred + k) % bases.length;
        const base = bases[i] as string;
        try {
          const machines = await readFrom(base);
          if (i !== preferred) options.log?.(`roster: ${bases[preferred]} failed; now reading from ${base}`);
          preferred = i;
          return machines;
        } catch (error) {
          failures.push(bases.length === 1 ? messageOf(error) : `${base}: ${messageOf(error)}`);
        }
      }
      throw new Error(failures.join("; "));
    },
  });
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** With no pinned key: the answer must still be signed, by the key it carries. */
function firstUse(body: Uint8Array, header: (name: string) => string | null) {
  return verifyCoordinatorAnswer(
    { path: "/v1/roster", body, header },
    { publicKey: header(CoordinatorAnswerHeaders.key) ?? "" },
  );
}

/** A roster held in memory (tests, a machine configured by hand). */
export function staticRoster(machines: readonly RosterEntry[]): PeerRoster {
  return {
    entries: async () => machines,
    lookup: async (machine) => find(machines, machine),
    invalidate: () => undefined,
  };
}

/**
 * The cache both sources share. One read at a time, and the roster in hand is served while it
 * runs: a request must never wait on the disk or the coordinator when a roster is in hand (a path
 * to the coordinator that eats large packets once stalled every signed peer call for the fetch
 * timeout, and the caller's diagnostics named that a firewall).
 */
function cachedRoster(o: {
  what: string;
  recheckMs: number;
  earlyRefreshMinMs: number;
  read: () => Promise<RosterEntry[] | "unchanged">;
  log: ((message: string) => void) | undefined;
  now: (() => number) | undefined;
}): PeerRoster {
  const now = o.now ?? Date.now;
  const log = o.log ?? (() => undefined);
  let cached: RosterEntry[] | undefined;
  let checkedAtMs = Number.NEGATIVE_INFINITY;
  let lastError: unknown;
  const reread = async (): Promise<void> => {
    checkedAtMs = now();
    try {
      const read = await o.read();
      if (read !== "unchanged") cached = read;
    } catch (error) {
      lastError = error;
      log(
        `reading ${o.what}: ${error instanceof Error ? error.message : String(error)}${cached === undefined ? "" : "; keeping the last good roster"}`,
      );
    }
  };
  let inflight: Promise<void> | undefined;
  const refresh = (): Promise<void> => (inflight ??= reread().finally(() => (inflight = undefined)));
  const entries = async (): Promise<readonly RosterEntry[]> => {
    if (cached === undefined) await refresh();
    else if (now() - checkedAtMs >= o.recheckMs) void refresh();
    if (cached === undefined) {
      const why = lastError instanceof Error ? lastError.message : String(lastError);
      throw new RosterUnavailableError(`reading ${o.what}: ${why}`, { cause: lastError });
    }
    return cached;
  };
  return {
    entries,
    lookup: async (machine) => {
      const known = find(await entries(), machine);
      if (known !== undefined) return known;
      // A read already under way is joined; a new one starts only past the early-refresh bound.
      if (inflight === undefined && now() - checkedAtMs < o.earlyRefreshMinMs) return undefined;
      await refresh();
      return find(cached ?? [], machine);
    },
    invalidate: () => {
      checkedAtMs = Number.NEGATIVE_INFINITY;
    },
  };
}

function parseRoster(value: unknown): RosterEntry[] {
  const parsed = Roster.safeParse(value);
  if (!parsed.success)
    throw new Error(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)[0] ?? "invalid roster");
  return parsed.data.machines;
}

function find(entries: readonly RosterEntry[], machine: string): RosterEntry | undefined {
  return entries.find((e) => e.name === machine || e.id === machine);
}
