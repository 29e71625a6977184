import { Roster } from "@potluck/protocol";

/** What the ledger needs to know about a writing machine: its identity key and whose account it meters. */
export interface KnownMachine {
  identityPublicKey: string;
  owner: string;
}

/** Looks a machine up by name; undefined when it is not on the roster. */
export interface MachineDirectory {
  lookup(machine: string): Promise<KnownMachine | undefined>;
}

/**
 * Limits of the roster cache: how long an answer is trusted, how soon an unknown name may trigger
 * a refetch (so a stream of forged names cannot hammer the coordinator), how long a fetch may
 * take and how large the answer may be.
 */
export const RosterCacheLimits = {
  freshMs: 30_000,
  refetchOnMissMs: 5_000,
  fetchTimeoutMs: 5_000,
  bodyBytesMax: 8 * 1024 * 1024,
} as const;

/**
 * The coordinator's roster (GET /v1/roster), cached: the machines whose signed requests may write
 * to the ledger. A key rotated or a machine removed on the coordinator is seen here within
 * `freshMs`. When the coordinator cannot be reached the last roster keeps serving; with none at
 * all, lookups fail loudly rather than treat every caller as unknown.
 */
export class CoordinatorRoster implements MachineDirectory {
  private machines: Map<string, KnownMachine> | undefined;
  private fetchedAt = 0;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly coordinatorUrl: string,
    private readonly clockMs: () => number = Date.now,
  ) {}

  async lookup(machine: string): Promise<KnownMachine | undefined> {
    const age = this.clockMs() - this.fetchedAt;
    if (this.machines === undefined || age > RosterCacheLimits.freshMs) await this.refresh();
    else if (!this.machines.has(machine) && age > RosterCacheLimits.refetchOnMissMs)
      await this.refresh().catch(() => undefined);
    return this.machines?.get(machine);
  }

  private refresh(): Promise<void> {
    this.inFlight ??= this.fetchRoster().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight.catch((error: unknown) => {
      // A stale roster is better than none; with none, say why no signature can be checked.
      if (this.machines === undefined) throw error;
    });
  }

  private async fetchRoster(): Promise<void> {
    const url = new URL("/v1/roster", this.coordinatorUrl);
    let text: string;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(RosterCacheLimits.fetchTimeoutMs) });
      if (!res.ok) throw new Error(`answered ${res.status}`);
      text = await res.text();
    } catch (error) {
      throw new Error(`reading the roster from ${url.href}: ${(error as Error).message}`, { cause: error });
    }
    if (text.length > RosterCacheLimits.bodyBytesMax)
      throw new Error(`the roster from ${url.href} is larger than ${RosterCacheLimits.bodyBytesMax} bytes`);
    const parsed = Roster.safeParse(JSON.parse(text));
    if (!parsed.success)
      throw new Error(`the roster from ${url.href} is not a roster: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    this.machines = new Map(
      parsed.data.machines.map((m) => [m.name, { identityPublicKey: m.identityPublicKey, owner: m.owner }]),
    );
    this.fetchedAt = this.clockMs();
  }
}
