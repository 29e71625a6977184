import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tinyGguf, TinyModelShape } from "@potluck/gguf";
import { privateKeyFromPem, SignedAudience, signRequest } from "@potluck/peer";
import { LedgerAmounts, MICRO_CREDITS_PER_CREDIT } from "@potluck/protocol";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pollUntil, waitForOutput } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import {
  createAttackLab,
  filesUnder,
  hostileModel,
  psqlAttempt,
  recorded,
  rosterBytes,
  sidecarPort,
  tinyModel,
  treeRssBytes,
  type AttackLab,
  type HostileMode,
} from "./helpers/attack-lab.js";
import type { CallAnswer, SignedCall } from "./helpers/signed-client.js";

// Issue 18's adversarial suite: one household in the lab (a hub, home1 and home2 of owner `home`,
// the ledger on real PostgreSQL) and `eve`, a machine of owner `eve` that joined with the token the
// hub's admin made for her. eve performs each of the thirteen attacks over the real mesh and LAN,
// signing with her real identity key where the attack is a signed call. Each is refused with a 4xx
// naming why, and the ledger (balances, head, every entry), both home machines' memory stores and
// the coordinator's roster are compared byte for byte before and after every attack.
const cli = join(repoRoot, "bin/potluck.mjs");
let a: AttackLab;
/**
 * The attacks that legitimately move the ledger say so, and check the move themselves: 2 (eve
 * serves home2's jobs: holds, settlements, voids, refunds) and 11 (eve's own hold, nothing else).
 */
let ledgerMoves = false;
/** The admin's grants (micro-credits): the sum of all balances, always. */
const grants = { home: 1_000_000, eve: 5_000_000 };
let before: State;
/** Restores home1's socket buffers if attack 11 stopped half-way. */
let undoWmem = async () => undefined;

interface State {
  ledger: string;
  memory: Record<string, Record<string, string>>;
  roster: string;
}

async function state(): Promise<State> {
  return {
    ledger: a.sql(
      `select json_build_object('balances', (select coalesce(json_agg(b order by account), '[]') from balances b), 'head', (select row_to_json(h) from head h), 'entries', (select coalesce(json_agg(e order by seq), '[]') from entries e))`,
    ),
    memory: {
      home1: filesUnder(join(a.hub.dataDir(a.home1), "memory")),
      home2: filesUnder(join(a.hub.dataDir(a.home2), "memory")),
    },
    roster: rosterBytes(await a.hub.roster()),
  };
}

beforeAll(async () => {
  a = await createAttackLab();
  // The only credits in this ledger: the admin's grants to home and to eve (who pays her own jobs,
  // attack 11), then a signed snapshot of them.
  await a.hub.grant(a.ledgerUrl, "home", grants.home, "grant-home");
  await a.hub.grant(a.ledgerUrl, "eve", grants.eve, "grant-eve");
  expect(await operator("/v1/log/snapshots")).toBe(201);
  await memory(a.home1, "add", "the garden hose splitter is in the shed", "--project", "garden");
  await memory(a.home1, "add", "tax return password hint: the cat's birthday", "--project", "taxes");
}, 20 * 60_000);

afterAll(async () => {
  await a?.teardown();
}, 180_000);

beforeEach(async () => {
  ledgerMoves = false;
  before = await state();
});

afterEach(async () => {
  await undoWmem();
  undoWmem = async () => undefined;
  const after = await state();
  expect(after.roster, "the roster").toBe(before.roster);
  expect(after.memory, "the memory stores").toEqual(before.memory);
  if (!ledgerMoves) expect(after.ledger, "the ledger's balances, head and log").toBe(before.ledger);
});

/** An operator write with the ledger's write token, from the hub; returns the status. */
async function operator(path: string, body?: unknown): Promise<number> {
  const argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"];
  argv.push("-H", `authorization: Bearer ${a.ledgerToken}`);
  if (body !== undefined) argv.push("-H", "content-type: application/json", "-d", JSON.stringify(body));
  return Number((await a.hub.host.exec([...argv, `${a.ledgerUrl}${path}`])).stdout);
}

async function memory(host: AttackLab["home1"], ...args: string[]): Promise<string> {
  const res = await host.exec([process.execPath, cli, "memory", ...args], {
    env: { POTLUCK_PORT: String(sidecarPort) },
    timeoutMs: 180_000,
  });
  expect(res.code, `${host.name}: potluck memory ${args.join(" ")}: ${res.stderr}`).toBe(0);
  return res.stdout;
}

/** curl inside `host`; status and body. */
async function curl(
  host: AttackLab["home1"],
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutS?: number } = {},
) {
  const argv = [
    "curl",
    "-s",
    "-m",
    String(options.timeoutS ?? 60),
    "-w",
    "\n%{http_code}",
    "-X",
    options.method ?? "GET",
  ];
  for (const [name, value] of Object.entries(options.headers ?? {})) argv.push("-H", `${name}: ${value}`);
  if (options.body !== undefined) argv.push("-H", "content-type: application/json", "--data-binary", options.body);
  const result = await host.exec([...argv, url], { timeoutMs: 180_000 });
  const lines = result.stdout.split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}

const home1Url = () => `http://${a.meshIp("home1")}:${sidecarPort}`;
const local = (path: string) => `http://127.0.0.1:${sidecarPort}${path}`;
const errorOf = (answer: CallAnswer | undefined) =>
  (answer?.body as { error?: { code?: string; field?: string; message?: string } })?.error;

/** A signed call from eve with her own key, as eve. */
const asEve = (url: string, method: string, path: string, body?: unknown, target = "home1"): SignedCall => ({
  url,
  method,
  path,
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  sign: { machine: "eve", target },
});
const toLedger = (body: unknown, machine = "eve"): SignedCall => ({
  url: a.ledgerUrl,
  method: "POST",
  path: "/v1/events",
  body: JSON.stringify(body),
  sign: { machine, target: SignedAudience.ledger },
});

/** An account's balance and held credits, as the ledger keeps them. */
function accountRow(account: string): { balance: number; held: number } {
  const [balance, held] = a.sql(`select balance, held from balances where account = '${account}'`).split("|");
  return { balance: Number(balance), held: Number(held) };
}

/** The ledger's entries for one job (its events and their pairs), oldest first. */
function jobEntries(jobId: string): { kind: string; account: string; delta: number; heldDelta: number }[] {
  return JSON.parse(
    a.sql(
      `select coalesce(json_agg(json_build_object('kind', kind, 'account', account, 'delta', delta, 'heldDelta', held_delta) order by seq), '[]') from entries where account = 'home' and (event_id like '${jobId}:%' or ref like '${jobId}:%')`,
    ),
  ) as never;
}

/** Waits until home's entries for `jobId` are exactly `kinds` (a moment more catches a stray one). */
async function untilEntries(jobId: string, kinds: string[]): Promise<void> {
  const kindsNow = () => jobEntries(jobId).map((e) => e.kind);
  const done = await pollUntil(() => kindsNow().length >= kinds.length, { timeoutMs: 30_000, intervalMs: 250 });
  expect(done, `ledger: ${kindsNow().join(", ")}; home2: ${a.sidecars.home2.output().slice(-1500)}`).toBe(true);
  await new Promise((r) => setTimeout(r, 1_000));
  expect(kindsNow()).toEqual(kinds);
}

/** The ledger's refusal code for an event it judged and refused. */
async function untilCode(eventId: string): Promise<string> {
  const code = () => a.sql(`select code from rejections where event_id = '${eventId}'`);
  await pollUntil(() => code() !== "", { timeoutMs: 30_000, intervalMs: 250 });
  return code();
}

/** home2's prompt served by eve's stand-in in `mode`; the job's id, its hold and what eve settled. */
async function eveServesHome2(mode: HostileMode): Promise<{ jobId: string; hold: number; settled?: number }> {
  a.hostileMode(mode);
  const res = await curl(a.home2, local("/v1/chat/completions"), {
    method: "POST",
    body: JSON.stringify({ model: hostileModel, messages: [{ role: "user", content: "hi" }], max_tokens: 16 }),
  });
  expect(res.status, res.body).toBe(200);
  expect(JSON.parse(res.body)).toMatchObject({ served_by: "eve" });
  const call = recorded(a.recorder)
    .filter((r) => r.url === "/peer/infer")
    .at(-1);
  const job = JSON.parse(call?.body ?? "{}") as { jobId: string; holdEventId?: string };
  expect(job.holdEventId, "home2 asked eve without a hold").toBe(`${job.jobId}:hold`);
  const held = () => a.sql(`select held_delta from entries where event_id = '${job.jobId}:hold'`);
  await pollUntil(() => held() !== "", { timeoutMs: 30_000, intervalMs: 250 });
  const hold = Number(held());
  expect(hold, `home2's hold for ${job.jobId} never reached the ledger`).toBeGreaterThan(0);
  const settled = /SETTLED (.*)/.exec(
    a.recorder
      .output()
      .split("\n")
      .filter((l) => l.includes(job.jobId))
      .join("\n"),
  )?.[1];
  return {
    jobId: job.jobId,
    hold,
    ...(settled === undefined ? {} : { settled: (JSON.parse(settled) as { amount: number }).amount }),
  };
}

describe("eve, a machine of another owner on the household's roster, attacks it", { timeout: 10 * 60_000 }, () => {
  it("1 mint credits: every earn, oversized amount, foreign account or self-grant eve signs is refused by the ledger", async () => {
    const { answers } = await a.signedCalls(a.eve, {
      calls: [
        toLedger({ kind: "earn", eventId: "eve-1", account: "eve", amount: 1_000 }),
        toLedger({ kind: "earn", eventId: "eve-2", account: "eve", amount: Number.MAX_SAFE_INTEGER }),
        toLedger({
          kind: "spend",
          eventId: "eve-3",
          account: "eve",
          payee: "eve",
          amount: LedgerAmounts.eventMicroMax + 1,
        }),
        toLedger({ kind: "spend", eventId: "eve-4", account: "home", payee: "eve", amount: 500 }),
        toLedger({ kind: "adjust", eventId: "eve-5", account: "eve", delta: 1_000_000, reason: "mine" }),
      ],
    });
    expect(answers.map((x) => [x.status, errorOf(x)?.code, errorOf(x)?.field])).toEqual([
      [422, "unpaired_earn", "kind"],
      [400, "invalid_request", "amount"],
      [400, "invalid_request", "amount"],
      [403, "forbidden", "account"],
      // A grant is the household admin's, signed with the hub's key: eve's own signature is no admin's.
      [403, "admin_signature_required", "kind"],
    ]);
    expect(errorOf(answers[3])?.message).toMatch(/meters eve's account, not home/);
  });

  it("1 mint credits over JetStream: eve, holding the household's NATS secret, publishes signed usage events; the ledger applies none", async () => {
    // eve's own machine signs both, as a sidecar signs its usage: an earn for herself with no job
    // behind it, and a spend debiting home paid to her.
    const script = `
      import { connect } from "@nats-io/transport-node";
      import { jetstream } from "@nats-io/jetstream";
      import { privateKeyFromPem, signedMessageHeaders, signRequest } from "@potluck/peer";
      import { natsConnectOptions } from "@potluck/protocol";
      const privateKey = privateKeyFromPem(process.env.EVE_KEY);
      const sign = (parts) => signRequest(parts, { machine: "eve", privateKey });
      const nc = await connect(natsConnectOptions(process.env.NATS_URL));
      const js = jetstream(nc);
      const at = new Date().toISOString();
      const events = [
        { eventId: "eve-js-1:earn", jobId: "eve-js-1", kind: "earn", account: "eve", counterparty: "home", servedBy: "eve", model: "big-model", tokens: 1000, amount: 900000, at },
        { eventId: "eve-js-2:spend", jobId: "eve-js-2", kind: "spend", account: "home", counterparty: "eve", servedBy: "eve", model: "big-model", tokens: 1000, amount: 900000, at },
      ];
      for (const ev of events) {
        const subject = process.env.PREFIX + ".usage." + ev.account;
        const payload = JSON.stringify(ev);
        await js.publish(subject, payload, { msgID: ev.eventId, headers: signedMessageHeaders(subject, payload, sign) });
      }
      await nc.drain();
      console.log("PUBLISHED");`;
    const published = await a.eve.exec([process.execPath, "--import", "tsx", "--input-type=module", "-e", script], {
      cwd: repoRoot,
      env: { EVE_KEY: a.keyPem(a.eve), NATS_URL: a.hub.natsUrl, PREFIX: a.hub.prefix },
      timeoutMs: 120_000,
    });
    expect(published.stdout, published.stderr).toMatch(/PUBLISHED/);
    // The ledger has judged both once one is recorded as refused and the other parked.
    const refused = () => a.sql(`select code from rejections where event_id = 'eve-js-1:earn'`);
    const parked = () => a.sql(`select reason from parked where event_id = 'eve-js-2:spend'`);
    const judged = await pollUntil(() => refused() !== "" && parked() !== "", { timeoutMs: 60_000, intervalMs: 250 });
    expect(judged, `ledger: ${a.ledger.output().slice(-2000)}`).toBe(true);
    expect(refused()).toBe("unpaired_earn");
    expect(parked()).toMatch(/signer_not_account_owner.*eve belongs to eve and may not move account home/);
  });

  // eve serves home2's prompt on her stand-in (attack-lab.ts), which reports a billion tokens for it
  // and, by her mode, names and publishes no settlement, one 1,000 times the hold, or one of the
  // whole hold. home2 placed a hold first (its account, bounded by max_tokens at the size eve
  // published), so the bill is the hold at most, and home2 refunds it down to what it observed.
  // The only attack that moves the ledger: a job was served, and the hold/settle rules close it.
  it("2 set the victim's bill: however eve settles home2's job, home never pays above its hold, and no more than it observed when eve names what she settled", async () => {
    ledgerMoves = true;
    const home = () => accountRow("home");
    const start = home();

    // No settlement named: home2 voids its hold, and home pays nothing.
    const unsettled = await eveServesHome2("unsettled");
    await untilEntries(unsettled.jobId, ["hold", "void"]);
    expect(home()).toEqual(start);

    // A settlement far above the hold, signed by eve and named in her done chunk: the ledger refuses
    // it (settle ≤ hold), and home2's dispute of it has nothing to refund. home pays nothing; its
    // hold stays open (home's credits held, not paid) until the ledger's expiry voids it.
    const inflated = await eveServesHome2("inflated");
    expect(await untilCode(`${inflated.jobId}:settle`)).toBe("settle_exceeds_hold");
    expect(a.sql(`select reason from rejections where event_id = '${inflated.jobId}:settle'`)).toMatch(
      new RegExp(`settle of ${inflated.settled} exceeds hold ${inflated.jobId}:hold of ${inflated.hold}`),
    );
    expect(await untilCode(`${inflated.jobId}:refund`)).toBe("unknown_spend");
    expect(jobEntries(inflated.jobId).map((e) => e.kind)).toEqual(["hold"]);
    expect(home()).toEqual({ balance: start.balance, held: start.held + inflated.hold });

    // The most the ledger lets eve settle, the whole hold: accepted, and home2 refunds the excess
    // over what it observed (its own prompt bound, the reply bytes it received, max_tokens).
    const whole = await eveServesHome2("full-hold");
    await untilEntries(whole.jobId, ["hold", "settle", "refund"]);
    const paid = start.balance - home().balance;
    const [settle, refund] = ["settle", "refund"].map((kind) => jobEntries(whole.jobId).find((e) => e.kind === kind));
    expect(-(settle?.delta ?? 0)).toBe(whole.hold);
    expect(paid).toBe(whole.hold - (refund?.delta ?? 0));
    // The oracle of what home2 observed: a prompt of at most 1,000 tokens (its own bound for "hi" is
    // far below) and max_tokens completion tokens, at the 7 B eve published: pricing.ts's model of a
    // reference A100, computed here independently.
    const parameters = 7e9;
    const a100Seconds = (1_000 * 2 * parameters) / (312e12 * 0.5) + (16 * parameters * 2) / 2.039e12;
    const bound = Math.ceil((a100Seconds / 60) * MICRO_CREDITS_PER_CREDIT);
    expect(paid).toBeGreaterThan(0);
    expect(paid).toBeLessThanOrEqual(bound);
    expect(paid).toBeLessThan(whole.hold);
    expect(home().held).toBe(start.held + inflated.hold);

    // The settlement eve publishes (the whole hold) is not the one she names (1 micro-credit, under
    // the job's own event id), so home2 sees nothing to dispute. The bill is still bounded by the
    // hold, never more; today it is the whole hold (the gap hold.ts's comment names: a requester
    // refunds only the settlement it was told of). A fix that refunds it down passes here too.
    const renamedFrom = home();
    const renamed = await eveServesHome2("renamed");
    const settled = () => jobEntries(renamed.jobId).some((e) => e.kind === "settle");
    expect(await pollUntil(settled, { timeoutMs: 30_000, intervalMs: 250 }), "eve's renamed settlement").toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    const paidRenamed = renamedFrom.balance - home().balance;
    expect(paidRenamed).toBeGreaterThan(0);
    expect(paidRenamed).toBeLessThanOrEqual(renamed.hold);
    expect(home().held).toBe(renamedFrom.held);

    console.log(
      `attack 2: holds of ${whole.hold}; inflated settle ${inflated.settled} refused, paid 0; whole-hold settle paid ${paid} after the refund (bound ${bound}); renamed settle paid ${paidRenamed}`,
    );
    // Credits are conserved: whatever eve gained, home lost; the sum is the admin's grants.
    expect(Number(a.sql(`select sum(balance) from balances`))).toBe(grants.home + grants.eve);
    expect(accountRow("eve").balance).toBe(grants.eve + paid + paidRenamed);
    expect(a.sidecars.home2.output()).toMatch(
      /usage dispute: job \S+ served by eve \(eve\) reported 1000000000 prompt/,
    );
  });

  it("9 replay a signed call elsewhere: home2's call to eve, replayed by eve at home1 and at the ledger, is refused as bad_signature naming the target", async () => {
    const fromHome2 = recorded(a.recorder).filter((r) => r.headers["x-potluck-machine"] === "home2");
    // The newest: attack 2 ran just before, so it is well inside the 60 s window.
    const call = fromHome2.filter((r) => r.url === "/peer/infer").at(-1) ?? fromHome2.at(-1);
    expect(call, "home2 made no signed call to eve (attack 2 runs just before)").toBeDefined();
    if (call === undefined) return;
    const headers = Object.fromEntries(
      Object.entries(call.headers).filter(([name]) => name.startsWith("x-potluck-") || name === "content-type"),
    );
    const replay = (url: string, path: string): SignedCall => ({
      url,
      method: call.method,
      path,
      body: call.body,
      headers,
    });
    const { answers } = await a.signedCalls(a.eve, {
      calls: [replay(home1Url(), call.url), replay(a.ledgerUrl, "/v1/events")],
    });
    expect(answers.map((x) => [x.status, errorOf(x)?.code])).toEqual([
      [401, "bad_signature"],
      [401, "bad_signature"],
    ]);
    expect(errorOf(answers[0])?.message).toMatch(/target home1/);
  });

  it("3 choose its owner: eve's join asking for owner home with her token is refused and enrolls nothing", async () => {
    const created = await a.hub.host.exec(
      [
        process.execPath,
        cli,
        "token",
        "create",
        "--owner",
        "eve",
        "--data-dir",
        a.hub.dataDir(a.hub.host),
        "--coordinator",
        "http://127.0.0.1:8320",
      ],
      { env: a.hub.env(), timeoutMs: 120_000 },
    );
    expect(created.code, created.stderr).toBe(0);
    const attack = await a.eve.exec(
      [
        process.execPath,
        cli,
        "join",
        a.hub.coordinatorUrl,
        created.stdout.trim(),
        "--owner",
        "home",
        "--name",
        "eve-as-home",
        "--data-dir",
        join(a.eve.runDir, "second-identity"),
        "--no-interface",
      ],
      { env: a.hub.env(), timeoutMs: 120_000 },
    );
    expect(attack.code).not.toBe(0);
    expect(attack.stderr).toMatch(/issued for owner "eve".*owner_mismatch/);
  });

  it("4 read another owner's memory: eve's signed searches of home1 are 403 not_shared; home2's fleet search never sends eve the query", async () => {
    const search = (body: unknown) => asEve(home1Url(), "POST", "/peer/memory/search", body);
    const { answers } = await a.signedCalls(a.eve, {
      calls: [
        search({ query: "tax password", project: "taxes", includeCold: true }),
        search({ query: "tax password", includeCold: true }),
      ],
    });
    expect(answers.map((x) => [x.status, errorOf(x)?.code])).toEqual([
      [403, "not_shared"],
      [403, "not_shared"],
    ]);
    expect(errorOf(answers[0])?.message).toMatch(/not shared with eve/);
    const fleet = await memory(a.home2, "search", "tax return password", "--fleet", "--deadline-ms", "5000", "--json");
    expect(JSON.parse(fleet)).toMatchObject({
      hits: expect.arrayContaining([expect.objectContaining({ machine: "home1" })]),
    });
    expect(recorded(a.recorder).filter((r) => r.url.startsWith("/peer/memory"))).toEqual([]);
  });

  it("5 skip metering with an alias: a call signed under eve's roster id is refused as unknown_key by home1 and by the ledger", async () => {
    const id = (await a.hub.roster()).machines.find((m) => m.name === "eve")?.id ?? "";
    expect(id).not.toBe("");
    const probe = JSON.stringify({ payload: "x" });
    const { answers } = await a.signedCalls(a.eve, {
      calls: [
        { url: home1Url(), method: "POST", path: "/peer/probe", body: probe, sign: { machine: id, target: "home1" } },
        toLedger({ kind: "spend", eventId: "alias-1", account: "home", payee: "eve", amount: 5 }, id),
      ],
    });
    expect(answers.map((x) => [x.status, errorOf(x)?.code])).toEqual([
      [401, "unknown_key"],
      [401, "unknown_key"],
    ]);
  });

  it("6 use the loopback API from a web page: refused from eve over the mesh (address) and under a rebound Host on home1 (host)", async () => {
    const meshUrl = home1Url();
    const status = async () => (await curl(a.home1, local("/memory/status"))).body;
    const statusBefore = await status();
    // Flipping fleet sharing is a write too: whatever it is now, the page tries the other way.
    const sharing = (JSON.parse(statusBefore) as { peerSearchEnabled: boolean }).peerSearchEnabled;
    for (const [method, path, body] of [
      ["GET", "/v1/models"],
      ["POST", "/memory/search", JSON.stringify({ query: "tax" })],
      ["POST", "/memory", JSON.stringify({ text: "eve was here" })],
      ["PUT", "/memory/peer-search", JSON.stringify({ enabled: !sharing })],
    ] as const) {
      const fromEve = await curl(a.eve, `${meshUrl}${path}`, {
        method,
        headers: { host: `127.0.0.1:${sidecarPort}` },
        ...(body === undefined ? {} : { body }),
      });
      expect(fromEve.status, `${method} ${path} from eve`).toBe(403);
      expect(JSON.parse(fromEve.body)).toMatchObject({ error: { code: "forbidden", field: "address" } });
      const rebound = await curl(a.home1, local(path), {
        method,
        headers: { host: `eve-rebind.example:${sidecarPort}`, origin: `http://eve-rebind.example:${sidecarPort}` },
        ...(body === undefined ? {} : { body }),
      });
      expect(rebound.status, `${method} ${path} rebound`).toBe(403);
      expect(JSON.parse(rebound.body)).toMatchObject({ error: { code: "forbidden", field: "host" } });
    }
    expect(await status()).toBe(statusBefore);
  });

  it("7 exhaust memory unauthenticated: 300 MiB chunked bodies at home1's /peer/* and the ledger's signed writes are 413 and never held", async () => {
    const flood = (url: string) =>
      a.eve.exec(
        [
          "sh",
          "-c",
          `head -c 314572800 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST -H 'x-potluck-machine: eve' -T - ${url}`,
        ],
        { timeoutMs: 240_000 },
      );
    const sidecarPid = a.sidecars.home1.pid;
    const rss = { sidecar: treeRssBytes(sidecarPid), ledger: treeRssBytes(a.ledger.pid) };
    expect(rss.sidecar).toBeGreaterThan(50 * 1024 * 1024);
    const [atSidecar, atLedger] = await Promise.all([
      flood(`${home1Url()}/peer/capabilities`),
      flood(`${a.ledgerUrl}/v1/events`),
    ]);
    expect(atSidecar.stdout.trim()).toBe("413");
    expect(atLedger.stdout.trim()).toBe("413");
    expect(treeRssBytes(sidecarPid) - rss.sidecar).toBeLessThan(64 * 1024 * 1024);
    expect(treeRssBytes(a.ledger.pid) - rss.ledger).toBeLessThan(64 * 1024 * 1024);
    expect((await curl(a.home1, local("/v1/models"))).status).toBe(200);
  });

  it("10 sit in the middle on the LAN: eve cannot enroll, mint tokens, delete machines, or hand a home machine her roster", async () => {
    const coordinator = a.hub.coordinatorUrl;
    const home1Entry = (await a.hub.roster()).machines.find((m) => m.name === "home1");
    const eveEntry = (await a.hub.roster()).machines.find((m) => m.name === "eve");
    const enroll = await curl(a.eve, `${coordinator}/v1/enroll`, {
      method: "POST",
      body: JSON.stringify({
        token: "a".repeat(40),
        name: "home3",
        owner: "home",
        wireguardPublicKey: eveEntry?.wireguardPublicKey,
        identityPublicKey: eveEntry?.identityPublicKey,
        endpoints: [],
      }),
    });
    expect(enroll.status, enroll.body).toBe(401);
    expect(JSON.parse(enroll.body)).toMatchObject({ error: { code: expect.stringMatching(/token/) } });
    const token = await curl(a.eve, `${coordinator}/v1/tokens`, {
      method: "POST",
      body: JSON.stringify({ owner: "home" }),
    });
    expect(token.status, token.body).toBe(401);
    const removed = await curl(a.eve, `${coordinator}/v1/machines/${home1Entry?.id ?? ""}`, { method: "DELETE" });
    expect(removed.status, removed.body).toBe(401);

    // eve answers on the LAN in the hub's place with a roster naming her key as home1's, signed by
    // her own key. home2 reads it with the roster source its sidecar uses, pinned to the hub's key.
    const forged = JSON.stringify({
      version: 99,
      machines: [{ ...home1Entry, identityPublicKey: eveEntry?.identityPublicKey }],
    });
    const fakeScript = `
      import { createPublicKey } from "node:crypto";
      import { createServer } from "node:http";
      import { privateKeyFromPem, publicKeyToBase64, signCoordinatorAnswer } from "@potluck/peer";
      const privateKey = privateKeyFromPem(process.env.EVE_KEY);
      const key = { privateKey, publicKey: publicKeyToBase64(createPublicKey(privateKey)) };
      const body = process.env.FORGED;
      createServer((req, res) => {
        res.writeHead(200, { "content-type": "application/json", ...signCoordinatorAnswer("/v1/roster", body, key) });
        res.end(body);
      }).listen(8399, "0.0.0.0", () => console.log("answering"));`;
    const fake = a.eve.spawn(
      "fake-coordinator",
      [process.execPath, "--import", "tsx", "--input-type=module", "-e", fakeScript],
      {
        cwd: repoRoot,
        env: { EVE_KEY: a.keyPem(a.eve), FORGED: forged },
      },
    );
    try {
      await waitForOutput(fake, /answering/, "eve's fake coordinator", 60_000);
      const reader = `
        import { coordinatorRoster } from "@potluck/peer";
        for (const url of ["http://${a.eve.underlayIp}:8399", ${JSON.stringify(a.hub.coordinatorUrl)}]) {
          const roster = coordinatorRoster({ url, coordinatorKey: process.env.HUB_KEY });
          try { await roster.entries(); console.log("ACCEPTED"); } catch (e) { console.log("REFUSED " + e.message); }
        }`;
      const read = await a.home2.exec([process.execPath, "--import", "tsx", "--input-type=module", "-e", reader], {
        cwd: repoRoot,
        env: { HUB_KEY: a.hubKey },
        timeoutMs: 120_000,
      });
      // eve's answer is refused for its signature; the hub's own, read the same way, is accepted.
      const [fromEve, fromHub] = read.stdout.trim().split("\n");
      expect(fromEve, read.stderr).toMatch(/^REFUSED .*sign/i);
      expect(fromHub, read.stderr).toBe("ACCEPTED");
    } finally {
      await fake.stop();
    }
  });

  // eve pays for the job she stalls: she places a real hold, signed by her machine on the household's
  // JetStream, as her sidecar would. The ledger may change by that hold alone: one `hold` entry on
  // eve's account and her held credits (and the head over it). home1 cuts the stream before its
  // done chunk, so it settles nothing (work cut off mid-reply is not paid), and eve, hostile, never
  // voids: her credits stay held until the ledger's expiry voids the hold (expire.ts, 15 min).
  it("11 hold the model with a slow reader: eve's paid 12,000-token job that she never reads is cut, home2's prompt is served meanwhile, and only her hold reaches the ledger", async () => {
    ledgerMoves = true;
    const messages = [{ role: "user" as const, content: "write a very long story" }];
    const request = {
      jobId: "eve-slow",
      model: tinyModel,
      messages,
      maxTokens: 12_000,
      temperature: 1,
      requester: { machine: "eve", owner: "eve" },
    };
    // Unpaid, the job is refused before any token, naming why.
    const unpaid = await a.signedCalls(a.eve, {
      calls: [asEve(home1Url(), "POST", "/peer/infer", { ...request, jobId: "eve-unpaid" })],
    });
    const refusal = errorOf(unpaid.answers[0]);
    expect([unpaid.answers[0]?.status, refusal?.code, refusal?.field]).toEqual([402, "hold_required", "holdEventId"]);
    expect(refusal?.message).toMatch(/eve belongs to eve: a job for another owner needs the hold its machine placed/);
    // A made-up hold buys nothing: home1 reads the hold at the sequence eve names on the usage
    // stream before the first token, and there is none (402, nothing served, nothing settled).
    const madeUp = await a.signedCalls(a.eve, {
      calls: [
        asEve(home1Url(), "POST", "/peer/infer", {
          ...request,
          jobId: "eve-madeup",
          holdEventId: "never-placed:hold",
          holdSeq: 999_999,
        }),
      ],
    });
    const notFound = errorOf(madeUp.answers[0]);
    expect([madeUp.answers[0]?.status, notFound?.code, notFound?.field]).toEqual([
      402,
      "hold_not_found",
      "holdEventId",
    ]);
    // Priced as a peer that saw no size holds (a typical 8 B model): more than the tiny model costs.
    const hold = await a.eveHolds({
      jobId: request.jobId,
      model: tinyModel,
      maxTokens: request.maxTokens,
      messages,
      servedBy: { machine: "home1", owner: "home" },
    });
    expect(hold.eventId).toBe("eve-slow:hold");
    expect(hold.seq).toBeGreaterThan(0);
    const body = JSON.stringify({ ...request, holdEventId: hold.eventId, holdSeq: hold.seq });
    const headers = signRequest(
      { method: "POST", path: "/peer/infer", body, target: "home1" },
      { machine: "eve", privateKey: privateKeyFromPem(a.keyPem(a.eve)) },
    );
    // A socket with a tiny receive buffer that sends the request and reads nothing for 45 s.
    const reader = `
import socket, sys, time, json
h = json.loads(sys.argv[1]); body = sys.argv[2].encode()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(("${a.meshIp("home1")}", ${sidecarPort}))
req = "POST /peer/infer HTTP/1.1\\r\\nhost: ${a.meshIp("home1")}\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n" % len(body)
for k, v in h.items(): req += "%s: %s\\r\\n" % (k, v)
s.sendall((req + "\\r\\n").encode() + body)
print("SENT", flush=True); time.sleep(60)
got = b""
s.settimeout(5)
try:
  while True:
    c = s.recv(65536)
    if not c: break
    got += c
except Exception as e: pass
print("DONE" if b'"type":"done"' in got else "CUT", len(got), got[:15].decode(), flush=True)`;
    // home1's kernel may buffer only a few KiB per socket, as on a constrained link: what the model
    // writes past that waits in the sidecar for eve to read, which she never does.
    const wmem = (await a.home1.exec(["sysctl", "-n", "net.ipv4.tcp_wmem"])).stdout.trim();
    expect((await a.home1.exec(["sysctl", "-w", "net.ipv4.tcp_wmem=4096 4096 4096"])).code).toBe(0);
    undoWmem = async () => void (await a.home1.exec(["sysctl", "-w", `net.ipv4.tcp_wmem=${wmem}`]));
    const slow = a.eve.spawn("slow-reader", ["python3", "-c", reader, JSON.stringify(headers), body]);
    await waitForOutput(slow, /SENT/, "eve's slow reader", 30_000);
    // The only model slot is eve's until her stalled stream is cut: home2 asks until it is served
    // (a queue_full 503 meanwhile is the sidecar saying so, not a hang).
    const started = Date.now();
    let honest = { status: 0, body: "" };
    await pollUntil(
      async () => {
        honest = await curl(a.home2, local("/v1/chat/completions"), {
          method: "POST",
          body: JSON.stringify({ model: tinyModel, messages: [{ role: "user", content: "hi" }], max_tokens: 8 }),
          timeoutS: 120,
        });
        return honest.status === 200;
      },
      { timeoutMs: 150_000, intervalMs: 1_000 },
    );
    expect(honest.status, honest.body).toBe(200);
    expect(JSON.parse(honest.body)).toMatchObject({ served_by: "home1" });
    // The stall deadline (stalledReaderMsMax, 30 s) and a reply, with room for a loaded machine.
    expect(Date.now() - started).toBeLessThan(120_000);
    await slow.exited;
    await undoWmem();
    // She was served (a 200 stream began), then cut before its end.
    expect(slow.output()).toMatch(/CUT \d+ HTTP\/1\.1 200/);
    // The ledger: before, plus eve's hold and nothing else (no settlement, no void, home untouched).
    const holdEntry = () =>
      a.sql(`select kind, account, delta, held_delta from entries where event_id = '${hold.eventId}'`);
    await pollUntil(() => holdEntry() !== "", { timeoutMs: 30_000, intervalMs: 250 });
    expect(holdEntry()).toBe(`hold|eve|0|${hold.amount}`);
    type Ledger = { balances: { account: string; balance: number; held: number }[]; entries: { event_id: string }[] };
    const was = JSON.parse(before.ledger) as Ledger;
    const now = JSON.parse((await state()).ledger) as Ledger;
    expect(now.entries.slice(0, was.entries.length)).toEqual(was.entries);
    expect(now.entries.slice(was.entries.length).map((e) => e.event_id)).toEqual([hold.eventId]);
    const rows = (l: Ledger) => l.balances.map(({ account, balance, held }) => ({ account, balance, held }));
    const eveWas = rows(was).find((r) => r.account === "eve");
    expect(rows(now)).toEqual(
      rows(was).map((r) => (r.account === "eve" ? { ...r, held: (eveWas?.held ?? 0) + hold.amount } : r)),
    );
  });

  it("12 abort the sidecar with a model file: a head_count = 0 GGUF home1 pulls from eve is refused naming why; home1 keeps serving", async () => {
    const file = join(a.eve.runDir, "gift.gguf");
    writeFileSync(file, tinyGguf(7, TinyModelShape, { "llama.attention.head_count": 0 }));
    const serve = `require("node:http").createServer((q, r) => require("node:fs").createReadStream(${JSON.stringify(file)}).pipe(r)).listen(8400, "0.0.0.0", () => console.log("serving"))`;
    const server = a.eve.spawn("gguf-server", [process.execPath, "-e", serve]);
    try {
      await waitForOutput(server, /serving/, "eve's model server", 60_000);
      const pulled = await curl(a.home1, local("/v1/potluck/models/pull"), {
        method: "POST",
        body: JSON.stringify({ ref: `http://${a.meshIp("eve")}:8400/gift.gguf` }),
        timeoutS: 120,
      });
      // The download is a stream that has begun, so the refusal is its last line, naming why.
      const last = JSON.parse(pulled.body.trim().split("\n").pop() ?? "{}") as {
        status: string;
        error?: { code: string; message: string };
      };
      expect(last, pulled.body).toMatchObject({ status: "error", error: { code: "model_failed" } });
      expect(last.error?.message).toMatch(/probe process crashed \(SIGABRT\).*refusing to load it in the sidecar/);
      const chat = await curl(a.home1, local("/v1/chat/completions"), {
        method: "POST",
        body: JSON.stringify({ model: "gift", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
        timeoutS: 120,
      });
      // The router's refusal names the file and the probe's crash. It is its 503 no_route ("right
      // now"), though the file will never load: a 4xx here is the routing owner's to decide.
      expect(chat.status, chat.body).toBe(503);
      expect(JSON.parse(chat.body)).toMatchObject({ error: { code: "no_route" } });
      expect(chat.body).toMatch(/model gift failed to load here: .*probe process crashed \(SIGABRT\)/);
      expect((await curl(a.home1, local("/health"))).status, "home1's sidecar is still up").toBe(200);
      const served = await curl(a.home1, local("/v1/chat/completions"), {
        method: "POST",
        body: JSON.stringify({ model: tinyModel, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
      });
      expect(served.status, served.body).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it("13 poison a signed snapshot: eve cannot snapshot; SQL writes to balances and head are refused; proofs and a read-only verify still pass", async () => {
    const { answers } = await a.signedCalls(a.eve, {
      calls: [
        {
          url: a.ledgerUrl,
          method: "POST",
          path: "/v1/log/snapshots",
          sign: { machine: "eve", target: SignedAudience.ledger },
        },
      ],
    });
    expect([answers[0]?.status, errorOf(answers[0])?.code, errorOf(answers[0])?.field]).toEqual([
      403,
      "forbidden",
      "authorization",
    ]);
    for (const write of [
      `update balances set balance = balance + 1000000 where account = 'home'`,
      `insert into balances (account, balance, held, as_of_seq) values ('eve', 5, 0, 0)`,
      `update head set size = size + 1`,
    ]) {
      const attempt = psqlAttempt(a.database, write);
      expect(attempt.ok, write).toBe(false);
      expect(attempt.stderr).toMatch(/change only through the ledger's append path/);
    }
    const proof = await curl(a.eve, `${a.ledgerUrl}/v1/log/proofs/home`);
    expect(proof.status, proof.body).toBe(200);
    // verify on a role that may only SELECT: it reads, writes nothing, and finds the log intact.
    const role = a.readOnlyRole;
    a.sql(
      `do $$ begin create role ${role} login; exception when duplicate_object then null; end $$; grant select on all tables in schema public to ${role}; grant usage on schema public to ${role}`,
    );
    const verified = spawnSync(process.execPath, [cli, "ledger", "verify"], {
      cwd: repoRoot,
      encoding: "utf8",
      env: {
        ...process.env,
        DATABASE_URL: `postgres://${role}@127.0.0.1:5432/${a.database}`,
        POTLUCK_DATA_DIR: a.ledgerDir,
      },
      timeout: 120_000,
    });
    expect(verified.status, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/ledger verifies/);
  });
  // Last: for a minute after it, eve's own signed calls are below the floor she raised.
  it("8 lock every peer out: eve fills the replay caches of home1 and the ledger with now+59 s stamps; only her own requests go stale", async () => {
    // Just past SigningLimits.nonceSignerEntriesMax, so her own oldest are evicted and her floor
    // rises to their stamp (now+59 s when sent).
    const count = 10_020;
    const probe = { payload: "x" };
    const sidecarFlood = () =>
      a.signedCalls(a.eve, {
        flood: {
          call: {
            ...asEve(home1Url(), "POST", "/peer/probe", probe),
            sign: { machine: "eve", target: "home1", aheadMs: 59_000 },
          },
          count,
          concurrency: 32,
        },
        calls: [
          asEve(home1Url(), "POST", "/peer/probe", probe),
          {
            ...asEve(home1Url(), "POST", "/peer/probe", probe),
            sign: { machine: "eve", target: "home1", aheadMs: 90_000 },
          },
        ],
      });
    const ledgerFlood = () =>
      a.signedCalls(a.eve, {
        flood: {
          call: {
            ...toLedger({ kind: "earn", eventId: "flood", account: "eve", amount: 1 }),
            sign: { machine: "eve", target: SignedAudience.ledger, aheadMs: 59_000 },
          },
          count,
          concurrency: 32,
        },
        calls: [toLedger({ kind: "earn", eventId: "flood", account: "eve", amount: 1 })],
      });
    // One after the other, each with the whole machine: to move a floor past now, a flood must
    // land within the 60 s window (a real attacker's machine does 10,000 requests in seconds).
    const atSidecar = await sidecarFlood();
    const atLedger = await ledgerFlood();
    const took = `floods took ${atSidecar.floodMs} ms and ${atLedger.floodMs} ms`;
    expect(atSidecar.flood).toEqual({ 200: count });
    expect(atLedger.flood).toEqual({ "422 unpaired_earn": count });
    // eve's own fresh request is below the floor her flood raised; a stamp past the skew never passes.
    expect(
      atSidecar.answers.map((x) => [x.status, errorOf(x)?.code]),
      took,
    ).toEqual([
      [401, "stale_timestamp"],
      [401, "stale_timestamp"],
    ]);
    expect([atLedger.answers[0]?.status, errorOf(atLedger.answers[0])?.code], took).toEqual([401, "stale_timestamp"]);
    // home2's honest calls right after pass the signature check: home1 answers its probe, and the
    // ledger judges its (unpaired) earn on its merits instead of calling it stale.
    const honest = await a.signedCalls(a.home2, {
      calls: [
        {
          url: home1Url(),
          method: "POST",
          path: "/peer/probe",
          body: JSON.stringify(probe),
          sign: { machine: "home2", target: "home1" },
        },
        toLedger({ kind: "earn", eventId: "honest", account: "home", amount: 1 }, "home2"),
      ],
    });
    expect(honest.answers.map((x) => [x.status, errorOf(x)?.code])).toEqual([
      [200, undefined],
      [422, "unpaired_earn"],
    ]);
  });
});
