import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { resolveDataDir } from "@potluck/service";
import { verifyProofBundle } from "@potluck/ledger-proof";
import { Defaults } from "@potluck/protocol";
import { CliError, unknownChoice, type Command } from "../command.js";
import { unreachableMessage } from "../../lib/unreachable.js";

const usage = `Usage:
  potluck ledger verify [--from HASH] [--key VKEY] [--witness VKEY,…] [--json]
      Replays the ledger's chain from its database (DATABASE_URL, else the embedded one in
      POTLUCK_DATA_DIR), recomputes hashes, the Merkle log, balances and snapshots, checks
      checkpoint signatures and anchor receipts, and names the first bad entry. --from HASH
      checks links only after that known-good entry hash. The log key is read from
      POTLUCK_LEDGER_KEY_FILE (default DATA_DIR/ledger.key) unless --key is given.
  potluck ledger proof ACCOUNT [--out FILE] [--url URL]
      Fetches ACCOUNT's proof bundle from the ledger (default http://127.0.0.1:${Defaults.ledgerPort}).
  potluck ledger grant ACCOUNT DELTA --reason TEXT [--id EVENT_ID] [--url URL] [--data-dir DIR]
      Grants DELTA micro-credits (negative takes them back) to ACCOUNT, signed with the hub's
      key (DATA_DIR/coordinator/signing-ed25519.pem): run it on the hub. The ledger accepts a
      grant from nobody else, its write token included. --id makes a retry safe (default: new).
  potluck ledger grants [--url URL] [--json]
      Lists the admin's grants (adjust entries), newest first: the only entries that change
      the sum of all balances, so that sum must equal theirs.
  potluck ledger parked [--url URL] [--json]
      Lists usage messages the ledger parked (malformed, or failing to append on their own),
      newest first, with the reason.
  potluck ledger verify-proof FILE --key VKEY [--witness VKEY,…] [--json]
      Verifies a proof bundle offline with nothing but the log's public key (C2SP note
      verifier key, NAME+HASH+KEY). Exit 0 only if every step holds.`;

const ledgerSubcommands = ["verify", "proof", "verify-proof", "grant", "grants", "parked"];

/** Bound on a proof bundle read from disk; real ones are a few kilobytes. */
const bundleBytesMax = 1024 * 1024;

export const ledgerCommand: Command = {
  name: "ledger",
  summary: "verify the credit ledger, export and check balance proofs",
  usage,
  flags: { strings: ["from", "key", "witness", "out", "url", "reason", "id", "data-dir"], booleans: ["json"] },
  async run(_argv, { flags, positionals: [sub, ...positionals] }) {
    const witnessKeys = (flags.get("witness") ?? "").split(",").filter((k) => k.length > 0);
    switch (sub) {
      case "verify":
        return verify(flags, witnessKeys);
      case "proof":
        return proof(positionals[0], flags);
      case "verify-proof":
        return verifyProof(positionals[0], flags, witnessKeys);
      case "grant":
        return grant(positionals, flags);
      case "grants":
        return list(
          "grants",
          flags,
          (g: { seq: number; account: string; delta: number; meta: string; createdAtMs: number }) =>
            `${new Date(g.createdAtMs).toISOString()}  entry ${g.seq}  ${g.account}  ${g.delta > 0 ? "+" : ""}${g.delta} micro-credits  ${g.meta}`,
        );
      case "parked":
        return list(
          "parked",
          flags,
          (p: { id: number; at: string; subject: string; eventId: string; reason: string }) =>
            `${p.at}  #${p.id}  ${p.subject}  event ${p.eventId || "(none)"}: ${p.reason}`,
        );
      default:
        throw unknownChoice("ledger subcommand", sub, ledgerSubcommands, "potluck ledger --help");
    }
  },
};

async function verify(flags: Map<string, string>, witnessKeys: string[]): Promise<number> {
  const dataDir = resolveDataDir(undefined);
  // Loaded here, not at the top: the ledger brings its database drivers, which every other
  // `potluck` command would otherwise pay for at start-up.
  const { verifyLedgerDatabase } = await import("@potluck/ledger");
  const result = await verifyLedgerDatabase({
    dataDir,
    witnessKeys,
    ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
    ...(flags.has("key") ? { key: flags.get("key") } : {}),
    ...(process.env.POTLUCK_LEDGER_KEY_FILE ? { keyFile: process.env.POTLUCK_LEDGER_KEY_FILE } : {}),
    ...(flags.has("from") ? { fromHash: flags.get("from") } : {}),
  }).catch((error: unknown) => {
    throw new CliError(`verifying the ledger: ${(error as Error).message}`);
  });
  const { chain, anchors } = result;
  if (flags.has("json")) process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!chain.ok)
    throw new CliError(
      `ledger does NOT verify: ${chain.problem?.seq === undefined ? "" : `first bad entry ${chain.problem.seq}${chain.problem.eventId ? ` (event ${chain.problem.eventId})` : ""}: `}${chain.problem?.what ?? "unknown problem"}`,
    );
  if (anchors.problem !== undefined) throw new CliError(`ledger anchors do NOT verify: ${anchors.problem}`);
  if (!flags.has("json")) {
    process.stdout.write(
      `ledger verifies: ${chain.entries} entries, ${chain.snapshots} snapshots, ${chain.checkpoints} checkpoints; anchor receipts ${anchors.checked} checked, ${anchors.pending} pending, ${anchors.unchecked} without a witness key\n`,
    );
  }
  return 0;
}

/** `potluck ledger grant ACCOUNT DELTA --reason TEXT`: one adjust, signed by the household admin. */
async function grant(positionals: string[], flags: Map<string, string>): Promise<number> {
  const [account, deltaText, ...extra] = positionals;
  const reason = flags.get("reason");
  if (account === undefined || deltaText === undefined || extra.length > 0 || reason === undefined)
    throw new CliError("expected potluck ledger grant ACCOUNT DELTA --reason TEXT", 2);
  if (!/^-?\d{1,16}$/.test(deltaText))
    throw new CliError(
      `DELTA ${JSON.stringify(deltaText)}: expected whole micro-credits, e.g. 1000000 for 1 credit`,
      2,
    );
  const base = flags.get("url") ?? process.env.POTLUCK_LEDGER_URL ?? `http://127.0.0.1:${Defaults.ledgerPort}`;
  const body = JSON.stringify({
    kind: "adjust",
    eventId: flags.get("id") ?? `grant-${randomUUID()}`,
    account,
    delta: Number(deltaText),
    reason,
  });
  // Loaded here: the ledger package brings database drivers no other subcommand but verify needs.
  const { grantPath, readHubPrivateKey, signGrant } = await import("@potluck/ledger");
  let key;
  try {
    key = readHubPrivateKey(resolveDataDir(flags.get("data-dir")));
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const res = await fetch(new URL(grantPath, base), {
    method: "POST",
    headers: { ...signGrant(body, key), "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(30_000),
  }).catch((error: unknown) => {
    throw new CliError(`posting the grant to ${base}: ${(error as Error).message}`);
  });
  const text = await res.text();
  if (!res.ok) throw new CliError(`the ledger refused the grant (${res.status}): ${safeMessage(text)}`);
  if (flags.has("json")) process.stdout.write(`${text}\n`);
  else {
    const outcome = JSON.parse(text) as { eventId: string; status: string; seq: number };
    process.stdout.write(
      `grant ${outcome.eventId} ${outcome.status} as entry ${outcome.seq}: ${account} ${deltaText} micro-credits\n`,
    );
  }
  return 0;
}

/** Fetches one page (the newest) of an operator list from the ledger and prints it, a line per row. */
async function list<T>(
  what: "grants" | "parked",
  flags: Map<string, string>,
  line: (row: T) => string,
): Promise<number> {
  const base = flags.get("url") ?? process.env.POTLUCK_LEDGER_URL ?? `http://127.0.0.1:${Defaults.ledgerPort}`;
  const res = await fetch(new URL(`/v1/${what}?limit=500`, base), { signal: AbortSignal.timeout(30_000) }).catch(
    (error: unknown) => {
      throw new CliError(unreachableMessage("ledger", base, error));
    },
  );
  const text = await res.text();
  if (!res.ok) throw new CliError(`the ledger answered ${res.status}: ${safeMessage(text)}`);
  if (flags.has("json")) {
    process.stdout.write(`${text}\n`);
    return 0;
  }
  const rows = (JSON.parse(text) as Record<string, T[]>)[what] ?? [];
  process.stdout.write(rows.length === 0 ? `no ${what}\n` : `${rows.map(line).join("\n")}\n`);
  return 0;
}

async function proof(account: string | undefined, flags: Map<string, string>): Promise<number> {
  if (account === undefined) throw new CliError("potluck ledger proof needs an ACCOUNT", 2);
  const base = flags.get("url") ?? process.env.POTLUCK_LEDGER_URL ?? `http://127.0.0.1:${Defaults.ledgerPort}`;
  const res = await fetch(new URL(`/v1/log/proofs/${encodeURIComponent(account)}`, base), {
    signal: AbortSignal.timeout(30_000),
  }).catch((error: unknown) => {
    throw new CliError(`fetching the proof from ${base}: ${(error as Error).message}`);
  });
  const text = await res.text();
  if (!res.ok) throw new CliError(`the ledger answered ${res.status}: ${safeMessage(text)}`);
  const out = flags.get("out");
  if (out === undefined) process.stdout.write(`${text}\n`);
  else {
    await writeFile(out, `${text}\n`);
    process.stdout.write(`proof bundle for ${account} written to ${out}\n`);
  }
  return 0;
}

async function verifyProof(
  file: string | undefined,
  flags: Map<string, string>,
  witnessKeys: string[],
): Promise<number> {
  const key = flags.get("key");
  if (file === undefined || key === undefined)
    throw new CliError("potluck ledger verify-proof needs FILE and --key VKEY", 2);
  const raw = await readFile(file, "utf8").catch((error: unknown) => {
    throw new CliError(`reading ${file}: ${(error as Error).message}`);
  });
  if (raw.length > bundleBytesMax)
    throw new CliError(`${file} is larger than ${bundleBytesMax} bytes; not a proof bundle`);
  let verdict;
  try {
    verdict = verifyProofBundle(JSON.parse(raw), key, witnessKeys);
  } catch (error) {
    throw new CliError(`proof does NOT verify: ${(error as Error).message}`);
  }
  const failed = verdict.anchors.find((a) => a.status === "failed");
  if (flags.has("json")) process.stdout.write(`${JSON.stringify(verdict)}\n`);
  else {
    process.stdout.write(
      `proof verifies: ${verdict.account} had ${verdict.balance} micro-credits at log size ${verdict.asOfSize}, in checkpoint ${verdict.checkpointSize} of ${verdict.origin}\n`,
    );
    for (const a of verdict.anchors) process.stdout.write(`  anchor ${a.kind}: ${a.status} (${a.detail})\n`);
  }
  if (failed !== undefined) throw new CliError(`anchor receipt ${failed.kind} does NOT verify: ${failed.detail}`);
  return 0;
}

function safeMessage(body: string): string {
  try {
    return (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}
