import type { MachineRow } from "./db/queries.js";

/**
 * The machines table as of one roster version. Reads check the version (one tiny query) and
 * reuse the rows when nothing changed; this process's own changes are applied in place when
 * they are the very next version, so several coordinators on one database stay correct.
 */
export class RosterCache {
  private version = -1;
  private readonly byName = new Map<string, MachineRow>();

  get currentVersion(): number {
    return this.version;
  }

  replace(version: number, rows: readonly MachineRow[]): void {
    this.version = version;
    this.byName.clear();
    for (const row of rows) this.byName.set(row.name, row);
  }

  /** Applies one change made at `version`; a gap means someone else changed the roster too. */
  apply(version: number, change: { upsert?: MachineRow; remove?: string }): void {
    if (version !== this.version + 1) {
      this.version = -1; // unknown: the next read reloads
      return;
    }
    if (change.remove !== undefined) this.byName.delete(change.remove);
    if (change.upsert !== undefined) this.byName.set(change.upsert.name, change.upsert);
    this.version = version;
  }

  byMachineName(name: string): MachineRow | undefined {
    return this.byName.get(name);
  }

  byId(id: string): MachineRow | undefined {
    for (const row of this.byName.values()) if (row.id === id) return row;
    return undefined;
  }

  /** Rows in mesh-address order. */
  rows(): MachineRow[] {
    return [...this.byName.values()].sort((a, b) => a.meshIndex - b.meshIndex);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}
