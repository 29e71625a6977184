import { randomUUID } from "node:crypto";
import {
  CoordinatorErrorCode as Code,
  CoordinatorLimits,
  Defaults,
  ErrorCode,
  PotluckHttpError,
  type EnrollRequest,
  type EnrollResponse,
  type Heartbeat,
  type KeyRotateRequest,
  type Roster,
  type RosterChanged,
  type RosterEntry,
  type TokenCreated,
  type TokenCreateRequest,
} from "@potluck/protocol";
import { and, count, eq, gt, isNull, lt, or } from "drizzle-orm";
import { systemClock, type Clock } from "./clock.js";
import type { CoordinatorDb } from "./db/open.js";
import {
  bumpRosterVersion,
  countMachines,
  lockEnrollment,
  lowestFreeMeshIndex,
  readMachines,
  readRosterVersion,
  writeHeartbeats,
  type CoordinatorTx,
  type MachineRow,
} from "./db/queries.js";
import { joinTokens, machines } from "./db/schema.js";
import { HeartbeatTracker } from "./heartbeats.js";
import { meshIpFor, meshPrefixLength } from "./mesh-address.js";
import { RosterCache } from "./roster-cache.js";
import { generateToken, hashToken } from "./tokens.js";

/** Where roster changes go: NATS in production, a list in tests. Must not throw. */
export interface RosterEvents {
  publish(change: RosterChanged): void;
}

export interface StateOptions {
  db: CoordinatorDb;
  /** The hub's own household: the owner a join token binds when its creator names none. */
  owner?: string;
  /** Fingerprint of the hub's signing key, carried by every join token (see signing-key.ts). */
  keyFingerprint: string;
  /** The roster machine on this host that spokes tunnel to (POTLUCK_HUB_MACHINE); rosters name it. */
  hubMachine?: string;
  clock?: Clock;
  events?: RosterEvents;
}

/** How long an expired join token is still recognised as expired before it is purged. */
const expiredTokenKeepMs = 24 * 3600 * 1000;
/** Heartbeat receive times written per flush statement. */
const heartbeatFlushBatchMax = 500;
/** A heartbeat from a name we do not know triggers a roster reload at most this often. */
const unknownReloadIntervalMs = 1_000;

/**
 * The one object every coordinator operation goes through (headscale's shape): HTTP handlers
 * and the NATS subscriber call these methods and never touch the database themselves.
 */
export class CoordinatorState {
  readonly heartbeats: HeartbeatTracker;
  private readonly db: CoordinatorDb;
  private readonly clock: Clock;
  private readonly events: RosterEvents;
  private readonly owner: string;
  private readonly keyFingerprint: string;
  private readonly hubMachine: string | null;
  private readonly cache = new RosterCache();
  private lastUnknownReloadMs = 0;
  /** Heartbeats dropped because no machine of that name is enrolled. */
  unknownHeartbeats = 0;
  /** Heartbeats accepted, and enrollments made, by this process (for metrics). */
  acceptedHeartbeats = 0;
  enrollments = 0;

  private constructor(options: StateOptions) {
    this.db = options.db;
    this.clock = options.clock ?? systemClock;
    this.events = options.events ?? { publish: () => undefined };
    this.owner = options.owner ?? "home";
    this.keyFingerprint = options.keyFingerprint;
    this.hubMachine = options.hubMachine ?? null;
    this.heartbeats = new HeartbeatTracker(this.clock);
  }

  /** Loads the roster and what earlier processes persisted about heartbeats. */
  static async open(options: StateOptions): Promise<CoordinatorState> {
    const state = new CoordinatorState(options);
    await state.reload();
    for (const row of state.cache.rows()) {
      if (row.lastHeartbeatAt !== null)
        state.heartbeats.seed(
          row.name,
          row.lastHeartbeatAt.getTime(),
          row.reportedWireguardKey ?? row.wireguardPublicKey,
        );
    }
    state.heartbeats.sweep(state.cache.names());
    return state;
  }

  async createToken(request: TokenCreateRequest): Promise<TokenCreated> {
    const now = this.clock.nowMs();
    // Expired tokens are kept a day (so "expired" can still be told from "unknown"), then purged.
    await this.db.delete(joinTokens).where(lt(joinTokens.expiresAt, new Date(now - expiredTokenKeepMs)));
    const [active] = await this.db
      .select({ n: count() })
      .from(joinTokens)
      .where(
        and(gt(joinTokens.expiresAt, new Date(now)), or(isNull(joinTokens.usedAt), eq(joinTokens.reusable, true))),
      );
    if ((active?.n ?? 0) >= CoordinatorLimits.tokensActiveMax) {
      throw new PotluckHttpError(
        409,
        ErrorCode.conflict,
        `${CoordinatorLimits.tokensActiveMax} unused join tokens exist already; let some expire first`,
      );
    }
    const token = generateToken(this.keyFingerprint);
    const expiresAt = new Date(now + request.ttlS * 1000);
    const owner = request.owner ?? this.owner;
    await this.db.insert(joinTokens).values({
      id: randomUUID(),
      tokenHash: hashToken(token),
      owner,
      reusable: request.reusable,
      createdAt: new Date(now),
      expiresAt,
    });
    return { token, expiresAt: expiresAt.toISOString(), reusable: request.reusable, owner };
  }

  async enroll(request: EnrollRequest): Promise<EnrollResponse> {
    const { row, version } = await this.db
      .transaction(async (tx) => {
        await lockEnrollment(tx);
        const owner = await this.spendToken(tx, request);
        await this.assertUnique(tx, request);
        // The roster is read up to this many machines: one enrolled past it would be on no roster,
        // its heartbeats "unknown", with nothing said.
        if ((await countMachines(tx)) >= CoordinatorLimits.rosterMachinesMax)
          throw new PotluckHttpError(
            409,
            Code.rosterFull,
            `the roster already holds its limit of ${CoordinatorLimits.rosterMachinesMax} machines; remove one before enrolling another`,
          );
        const meshIndex = await lowestFreeMeshIndex(tx);
        if (!Number.isInteger(meshIndex) || meshIndex > CoordinatorLimits.meshAddressesMax) {
          throw new PotluckHttpError(409, Code.meshFull, `every address in ${Defaults.meshCidr} is taken`);
        }
        const [inserted] = await tx
          .insert(machines)
          .values({
            id: randomUUID(),
            name: request.name,
            owner,
            meshIndex,
            wireguardPublicKey: request.wireguardPublicKey,
            identityPublicKey: request.identityPublicKey,
            endpoints: request.endpoints,
            enrolledAt: new Date(this.clock.nowMs()),
          })
          .returning();
        if (inserted === undefined) throw new Error("enrolling: insert returned no row");
        return { row: inserted, version: await bumpRosterVersion(tx) };
      })
      .catch(mapUniqueViolation);
    this.enrollments++;
    this.heartbeats.forget(row.name);
    this.cache.apply(version, { upsert: row });
    this.events.publish({ version, reason: "enrolled", machine: row.name });
    const roster = await this.roster();
    return {
      machine: this.toEntry(row),
      interfaceName: Defaults.interfaceName,
      prefixLength: meshPrefixLength,
      mtu: Defaults.meshMtu,
      peers: roster.machines.filter((m) => m.id !== row.id),
    };
  }

  async roster(): Promise<Roster> {
    await this.sync();
    return {
      version: this.cache.currentVersion,
      machines: this.cache.rows().map((row) => this.toEntry(row)),
      hub: this.hubMachine,
    };
  }

  /** The roster version alone: membership and keys changed iff it changed (liveness does not bump it). */
  async rosterVersion(): Promise<number> {
    await this.sync();
    return this.cache.currentVersion;
  }

  /** One machine by id or by name. */
  async machine(ref: string): Promise<RosterEntry> {
    return this.toEntry(await this.find(ref));
  }

  async remove(ref: string): Promise<RosterEntry> {
    const row = await this.find(ref);
    const version = await this.db.transaction(async (tx) => {
      const deleted = await tx.delete(machines).where(eq(machines.id, row.id)).returning({ id: machines.id });
      if (deleted.length === 0) throw unknownMachine(ref);
      return bumpRosterVersion(tx);
    });
    this.heartbeats.forget(row.name);
    this.cache.apply(version, { remove: row.name });
    this.events.publish({ version, reason: "removed", machine: row.name });
    return this.toEntry(row);
  }

  async rotateKeys(ref: string, request: KeyRotateRequest): Promise<RosterEntry> {
    if (request.wireguardPublicKey === undefined && request.identityPublicKey === undefined) {
      throw new PotluckHttpError(
        400,
        ErrorCode.invalidRequest,
        "give wireguardPublicKey, identityPublicKey or both",
        "wireguardPublicKey",
      );
    }
    const row = await this.find(ref);
    const { updated, version } = await this.db
      .transaction(async (tx) => {
        const [changed] = await tx
          .update(machines)
          .set({
            wireguardPublicKey: request.wireguardPublicKey ?? row.wireguardPublicKey,
            identityPublicKey: request.identityPublicKey ?? row.identityPublicKey,
            keyRotatedAt: new Date(this.clock.nowMs()),
          })
          .where(eq(machines.id, row.id))
          .returning();
        if (changed === undefined) throw unknownMachine(ref);
        return { updated: changed, version: await bumpRosterVersion(tx) };
      })
      .catch(mapUniqueViolation);
    this.cache.apply(version, { upsert: updated });
    this.events.publish({ version, reason: "key_rotated", machine: updated.name });
    return this.toEntry(updated);
  }

  /**
   * A heartbeat as received (already schema-checked). Stamped with our receive time; a tunnel
   * key that differs from the roster's is published at once as a stale key.
   */
  heartbeat(beat: Heartbeat): "ok" | "unknown" {
    const row = this.cache.byMachineName(beat.machine);
    if (row === undefined) {
      this.unknownHeartbeat();
      return "unknown";
    }
    this.acceptedHeartbeats++;
    const before = this.heartbeats.record(beat.machine, beat.wireguardPublicKey, beat.seq);
    const wasStale = before !== undefined && before.wireguardPublicKey !== row.wireguardPublicKey;
    if (!wasStale && beat.wireguardPublicKey !== row.wireguardPublicKey) {
      this.events.publish({ version: this.cache.currentVersion, reason: "stale_key", machine: beat.machine });
    }
    return "ok";
  }

  /** The identity key heartbeats from `name` must be signed with; undefined for a name not on the roster. */
  identityKeyOf(name: string): string | undefined {
    return this.cache.byMachineName(name)?.identityPublicKey ?? undefined;
  }

  /**
   * A heartbeat from a name this process does not know: counted, and the roster is reloaded soon,
   * since another coordinator of the community may have enrolled it.
   */
  unknownHeartbeat(): void {
    this.unknownHeartbeats++;
    this.reloadSoon();
  }

  /** Machines per state and with a stale key, from memory (no database round trip): for metrics. */
  liveness(): { version: number; online: number; offline: number; neverSeen: number; staleKeys: number } {
    const counts = { version: this.cache.currentVersion, online: 0, offline: 0, neverSeen: 0, staleKeys: 0 };
    for (const row of this.cache.rows()) {
      const entry = this.toEntry(row);
      if (entry.state === "online") counts.online++;
      else if (entry.state === "offline") counts.offline++;
      else counts.neverSeen++;
      if (entry.staleKey) counts.staleKeys++;
    }
    return counts;
  }

  /** Publishes every online/offline transition since the last sweep; call about once a second. */
  sweep(): void {
    for (const change of this.heartbeats.sweep(this.cache.names())) {
      this.events.publish({ version: this.cache.currentVersion, reason: "state_changed", machine: change.machine });
    }
  }

  /** Writes pending heartbeat receive times; returns how many. Failed rows are retried next time. */
  async flush(): Promise<number> {
    let written = 0;
    for (;;) {
      const batch = this.heartbeats.takeDirty(heartbeatFlushBatchMax);
      if (batch.length === 0) return written;
      try {
        await writeHeartbeats(this.db, batch);
      } catch (error) {
        this.heartbeats.markDirty(batch.map((b) => b.machine));
        throw new Error(`writing heartbeat times: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
      }
      written += batch.length;
    }
  }

  private toEntry(row: MachineRow): RosterEntry {
    const heard = this.heartbeats.lastHeard(row.name);
    return {
      id: row.id,
      name: row.name,
      owner: row.owner,
      meshIp: meshIpFor(row.meshIndex),
      wireguardPublicKey: row.wireguardPublicKey,
      identityPublicKey: row.identityPublicKey,
      endpoints: row.endpoints,
      state: this.heartbeats.stateOf(row.name),
      lastHeartbeatAt: heard === undefined ? null : new Date(heard.receivedAtMs).toISOString(),
      staleKey: heard !== undefined && heard.wireguardPublicKey !== row.wireguardPublicKey,
    } as RosterEntry;
  }

  /** Brings the cache up to the database's roster version (one small query when unchanged). */
  private async sync(): Promise<void> {
    const version = await readRosterVersion(this.db);
    if (version !== this.cache.currentVersion) await this.reload();
  }

  private async reload(): Promise<void> {
    const version = await readRosterVersion(this.db);
    this.cache.replace(version, await readMachines(this.db, CoordinatorLimits.rosterMachinesMax));
  }

  private reloadSoon(): void {
    const now = this.clock.nowMs();
    if (now - this.lastUnknownReloadMs < unknownReloadIntervalMs) return;
    this.lastUnknownReloadMs = now;
    this.sync().catch(() => undefined); // best effort; the next unknown heartbeat retries
  }

  private async find(ref: string): Promise<MachineRow> {
    await this.sync();
    const row = this.cache.byId(ref) ?? this.cache.byMachineName(ref);
    if (row === undefined) throw unknownMachine(ref);
    return row;
  }

  /** Spends the join token and returns the owner it binds: the machine's owner, whatever the request says. */
  private async spendToken(tx: CoordinatorTx, request: EnrollRequest): Promise<string> {
    const [token] = await tx
      .select()
      .from(joinTokens)
      .where(eq(joinTokens.tokenHash, hashToken(request.token)));
    const now = this.clock.nowMs();
    if (token === undefined)
      throw new PotluckHttpError(
        401,
        Code.tokenUnknown,
        "join token is not known to this coordinator; check it was copied whole",
        "token",
      );
    if (token.expiresAt.getTime() <= now) {
      throw new PotluckHttpError(
        401,
        Code.tokenExpired,
        `join token expired at ${token.expiresAt.toISOString()}; create a new one with potluck token create`,
        "token",
      );
    }
    if (!token.reusable && token.usedAt !== null) {
      throw new PotluckHttpError(
        401,
        Code.tokenUsed,
        `join token was already used at ${token.usedAt.toISOString()}; it is single-use — create a new one with potluck token create`,
        "token",
      );
    }
    // Tokens from before owners were bound carry none: they were issued by this hub's admin, for its household.
    const owner = token.owner ?? this.owner;
    if (request.owner !== undefined && request.owner !== owner) {
      throw new PotluckHttpError(
        403,
        Code.ownerMismatch,
        `this join token was issued for owner "${owner}", not "${request.owner}"; the hub's admin chooses the owner (potluck token create --owner NAME)`,
        "owner",
      );
    }
    await tx
      .update(joinTokens)
      .set({ usedAt: token.usedAt ?? new Date(now), uses: token.uses + 1 })
      .where(eq(joinTokens.id, token.id));
    return owner;
  }

  private async assertUnique(tx: CoordinatorTx, request: EnrollRequest): Promise<void> {
    const clash = await tx
      .select({ name: machines.name, wireguardPublicKey: machines.wireguardPublicKey })
      .from(machines)
      .where(or(eq(machines.name, request.name), eq(machines.wireguardPublicKey, request.wireguardPublicKey)));
    for (const row of clash) {
      if (row.name === request.name)
        throw new PotluckHttpError(
          409,
          Code.nameTaken,
          `a machine named "${request.name}" is already enrolled; pick another --name or remove it first`,
          "name",
        );
      throw new PotluckHttpError(
        409,
        Code.keyTaken,
        `machine "${row.name}" already uses this WireGuard public key`,
        "wireguardPublicKey",
      );
    }
  }
}

function unknownMachine(ref: string): PotluckHttpError {
  return new PotluckHttpError(404, Code.machineUnknown, `no machine with id or name "${ref}" in the roster`, "id");
}

/** The unique constraints back up the in-transaction checks; their violation is still a clear 409. */
function mapUniqueViolation(error: unknown): never {
  const cause =
    (error as { cause?: { code?: string; constraint_name?: string; constraint?: string } }).cause ??
    (error as { code?: string; constraint_name?: string });
  if (cause.code === "23505") {
    const constraint =
      (cause as { constraint_name?: string; constraint?: string }).constraint_name ??
      (cause as { constraint?: string }).constraint ??
      "";
    if (constraint.includes("name"))
      throw new PotluckHttpError(409, Code.nameTaken, "a machine with this name is already enrolled", "name");
    if (constraint.includes("wireguard"))
      throw new PotluckHttpError(
        409,
        Code.keyTaken,
        "another machine already uses this WireGuard public key",
        "wireguardPublicKey",
      );
    throw new PotluckHttpError(409, ErrorCode.conflict, `conflicts with an enrolled machine (${constraint})`);
  }
  throw error;
}
