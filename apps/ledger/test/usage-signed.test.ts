import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { generateIdentity, privateKeyFromPem, signedMessageHeaders, signRequest, staticRoster } from "@potluck/peer";
import { RosterEntry, subjectsFor, type UsageEvent } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rosterDirectory } from "../src/auth/roster.js";
import { ensureUsageConsumer, startIngest } from "../src/ingest/jetstream.js";
import { usageVerifier } from "../src/ingest/verify-usage.js";
import { ev, testLedger } from "./helpers/ledger.js";

/**
 * Usage events on JetStream are signed by the machine that reports them, and the ledger applies
 * only those whose signer may move the account: real NATS, a real ledger on PostgreSQL, a roster
 * of two owners. Every attack below is parked with its reason and leaves every balance as it was.
 */
describe("signed usage events on JetStream", () => {
  const prefix = `su${randomBytes(4).toString("hex")}`;
  const homebox = generateIdentity();
  const evebox = generateIdentity();
  const roster: RosterEntry[] = [
    entry("m1", "homebox", "home", homebox.publicKey),
    entry("m2", "evebox", "guest", evebox.publicKey),
  ];
  let nc: NatsConnection;
  let t: Awaited<ReturnType<typeof testLedger>>;
  let ingest: { stop: () => Promise<void> };

  beforeAll(async () => {
    nc = await connect({ servers: process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222" });
    t = await testLedger();
    await t.ledger.append([ev({ kind: "adjust", eventId: "grant-home", account: "home", delta: 1_000, reason: "t" })]);
    const { stream } = await ensureUsageConsumer(nc, prefix, "ledger");
    ingest = startIngest({
      nc,
      ledger: t.ledger,
      stream,
      durable: "ledger",
      batchMax: 50,
      log: () => undefined,
      onStall: () => undefined,
      verify: usageVerifier(rosterDirectory(staticRoster(roster))),
    });
  });
  afterAll(async () => {
    await ingest?.stop();
    await (await jetstreamManager(nc)).streams.delete(subjectsFor(prefix).usageStream.name).catch(() => undefined);
    await nc.close();
    await t?.close();
  });

  const usage = (eventId: string, over: Partial<UsageEvent> = {}): UsageEvent => ({
    eventId,
    jobId: `job-${eventId}`,
    kind: "spend",
    account: "home",
    counterparty: "guest",
    servedBy: "evebox",
    model: "tiny",
    tokens: 10,
    amount: 7,
    at: new Date().toISOString(),
    ...over,
  });

  /** Publishes `event` as a sidecar does, signed by `signer` (or not at all), optionally tampered after signing. */
  async function publish(
    event: UsageEvent,
    signer: { machine: string; pem: string } | undefined,
    tamper: (payload: string) => string = (p) => p,
  ) {
    const subject = subjectsFor(prefix).usage(event.account);
    const payload = JSON.stringify(event);
    const h =
      signer === undefined
        ? undefined
        : signedMessageHeaders(subject, payload, (parts) =>
            signRequest(parts, { machine: signer.machine, privateKey: privateKeyFromPem(signer.pem) }),
          );
    await jetstream(nc).publish(subject, tamper(payload), h === undefined ? {} : { headers: h });
  }

  async function settled(predicate: () => Promise<boolean>) {
    for (let i = 0; i < 100; i += 1) {
      if (await predicate()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the ledger did not get there within 10 s");
  }

  const balances = async () => ({ home: await t.ledger.balance("home"), guest: await t.ledger.balance("guest") });
  const parkedReasons = async () => (await t.ledger.parkedPage(Number.MAX_SAFE_INTEGER, 100)).map((p) => p.reason);

  it("applies a spend signed by a machine of the paying owner", async () => {
    await publish(usage("ok-1"), { machine: "homebox", pem: homebox.privateKeyPem });
    await settled(async () => (await balances()).guest?.balance === 7);
    expect(await balances()).toMatchObject({ home: { balance: 993 }, guest: { balance: 7 } });
  });

  it("parks every forged, unsigned, tampered or foreign event and changes no balance", async () => {
    const before = await balances();
    // Eve's machine bills the home household for work it claims to have done.
    await publish(usage("atk-bill", { amount: 500 }), { machine: "evebox", pem: evebox.privateKeyPem });
    // Anyone holding the NATS secret, signing nothing.
    await publish(usage("atk-unsigned", { amount: 500 }), undefined);
    // A real home signature over 7 credits, the amount raised on the wire.
    await publish(usage("atk-tamper"), { machine: "homebox", pem: homebox.privateKeyPem }, (p) =>
      p.replace('"amount":7', '"amount":700'),
    );
    // A machine that is not on the roster, and one that signs as another's name with its own key.
    const mallory = generateIdentity();
    await publish(usage("atk-stranger"), { machine: "mallory", pem: mallory.privateKeyPem });
    await publish(usage("atk-alias"), { machine: "m1", pem: homebox.privateKeyPem });
    // An earn naming a server other than its signer.
    await publish(usage("atk-earn", { kind: "earn", account: "home", servedBy: "evebox" }), {
      machine: "homebox",
      pem: homebox.privateKeyPem,
    });
    await settled(async () => (await parkedReasons()).length >= 6);
    const reasons = (await parkedReasons()).join("\n");
    expect(reasons).toMatch(/signer_not_account_owner\): evebox belongs to guest and may not move account home/);
    expect(reasons).toMatch(/\(unsigned\)/);
    expect(reasons).toMatch(/\(bad_signature\)/);
    expect(reasons).toMatch(/\(unknown_key\).*mallory/);
    expect(reasons).toMatch(/\(unknown_key\).*m1/);
    expect(reasons).toMatch(/signer_not_server\): an earn for evebox was signed by homebox/);
    expect(await balances()).toEqual(before);
  });

  it("applies a signed event once however often it is replayed", async () => {
    const before = await balances();
    const replayed = usage("ok-2");
    for (let i = 0; i < 3; i += 1) await publish(replayed, { machine: "homebox", pem: homebox.privateKeyPem });
    await settled(async () => (await balances()).guest?.balance === (before.guest?.balance ?? 0) + 7);
    await new Promise((r) => setTimeout(r, 500));
    expect((await balances()).guest?.balance).toBe((before.guest?.balance ?? 0) + 7);
  });

  it("applies a job between owners as the requester's hold, the server's settlement and the requester's dispute", async () => {
    const before = await balances();
    const home = { machine: "homebox", pem: homebox.privateKeyPem };
    const eve = { machine: "evebox", pem: evebox.privateKeyPem };
    const job = (kind: UsageEvent["kind"], amount: number, ref?: string) =>
      usage(`j1:${kind}`, { kind, jobId: "j1", amount, ...(ref === undefined ? {} : { ref }) });
    await publish(job("hold", 100), home);
    // The requester may not settle its own hold (it would pay the server nothing), nor eve settle as another machine.
    await publish(
      usage("j1:settle-by-home", { kind: "settle", jobId: "j1", amount: 1, ref: "j1:hold", servedBy: "homebox" }),
      home,
    );
    await publish(
      usage("j1:settle-alias", { kind: "settle", jobId: "j1", amount: 1, ref: "j1:hold", servedBy: "homebox" }),
      eve,
    );
    await publish(job("settle", 60, "j1:hold"), eve);
    await publish(job("refund", 20, "j1:settle"), home);
    const home0 = before.home?.balance ?? 0;
    const guest0 = before.guest?.balance ?? 0;
    await settled(async () => (await balances()).guest?.balance === guest0 + 40);
    expect(await balances()).toMatchObject({
      home: { balance: home0 - 40, held: before.home?.held ?? 0 },
      guest: { balance: guest0 + 40 },
    });
    const reasons = (await parkedReasons()).join("\n");
    expect(reasons).toMatch(/signer_not_payee\): homebox belongs to home, but the settlement pays guest/);
    expect(reasons).toMatch(/signer_not_server\): a settlement for homebox was signed by evebox/);
  });

  it("lets either party void a hold, refuses a settlement by the payee of another hold, and a void by a stranger", async () => {
    const before = await balances();
    const home = { machine: "homebox", pem: homebox.privateKeyPem };
    const eve = { machine: "evebox", pem: evebox.privateKeyPem };
    // A hold home placed for a third owner's machine: eve's machine may neither settle nor void it.
    await publish(usage("j2:hold", { kind: "hold", jobId: "j2", counterparty: "third", amount: 50 }), home);
    await publish(usage("j2:settle", { kind: "settle", jobId: "j2", amount: 50, ref: "j2:hold" }), eve);
    await publish(
      usage("j2:void-eve", { kind: "void", jobId: "j2", counterparty: "third", amount: 50, ref: "j2:hold" }),
      eve,
    );
    await publish(usage("j3:hold", { kind: "hold", jobId: "j3", amount: 30 }), home);
    await settled(async () => (await balances()).home?.held === (before.home?.held ?? 0) + 80);
    await publish(usage("j3:void", { kind: "void", jobId: "j3", amount: 30, ref: "j3:hold" }), eve);
    await publish(
      usage("j2:void", { kind: "void", jobId: "j2", counterparty: "third", amount: 50, ref: "j2:hold" }),
      home,
    );
    await settled(async () => (await balances()).home?.held === (before.home?.held ?? 0));
    expect(await balances()).toEqual({
      home: { ...before.home, asOfSeq: expect.any(Number) },
      guest: { ...before.guest, asOfSeq: expect.any(Number) },
    });
    expect((await parkedReasons()).join("\n")).toMatch(
      /signer_not_party\): evebox belongs to guest, not to home or third/,
    );
  });
});

function entry(id: string, name: string, owner: string, key: string): RosterEntry {
  return RosterEntry.parse({
    id,
    name,
    owner,
    meshIp: `100.64.0.${id.slice(1)}`,
    wireguardPublicKey: key,
    identityPublicKey: key,
    endpoints: [],
    state: "online",
    lastHeartbeatAt: null,
    staleKey: false,
  });
}
