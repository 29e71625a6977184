import {
  Defaults,
  ErrorBody,
  MemorySearchRequest,
  MemorySearchResponse,
  MemorySharing,
  MemoryStatus,
  MemoryWriteRequest,
  MemoryWriteResponse,
  ProjectShare,
  check,
} from "@potluck/protocol";
import { CliError, unknownChoice, type Command } from "../command.js";
import { unreachableMessage } from "../../lib/unreachable.js";

const usage = `Usage: potluck memory COMMAND [options]

  add TEXT [--project P] [--tags a,b] [--confidence 0-1] [--pinned]
  search QUERY [--project P] [--limit N] [--min-confidence 0-1] [--include-cold] [--fleet] [--deadline-ms N]
  get ID
  rm ID
  status                      records, embedder, corrupt and foreign records, peer opt-in
  share on|off                let your own machines search this machine's memory (no restart)
  share PROJECT --with OWNER  let OWNER's machines search this machine's PROJECT, and nothing else
  unshare PROJECT --with OWNER
  sharing                     the opt-in and every project shared with another owner

Talks to the local sidecar at http://127.0.0.1:PORT (--port, POTLUCK_PORT, default ${Defaults.sidecarPort}).
--json prints the raw API answer.`;

/** Each sidecar call may take this long; fleet searches carry their own, shorter deadline. */
const requestTimeoutMs = 30_000;

export const memoryCommand: Command = {
  name: "memory",
  summary: "add, search and remove memories on this machine (or search the fleet)",
  usage,
  flags: {
    strings: ["project", "tags", "confidence", "limit", "min-confidence", "deadline-ms", "port", "with"],
    booleans: ["pinned", "include-cold", "fleet", "json"],
  },
  async run(_argv, { flags, positionals }) {
    const [sub, ...args] = positionals;
    const base = `http://127.0.0.1:${flags.get("port") ?? process.env.POTLUCK_PORT ?? Defaults.sidecarPort}`;
    const json = flags.has("json");
    switch (sub) {
      case "add":
        return add(base, args.join(" "), flags, json);
      case "search":
        return search(base, args.join(" "), flags, json);
      case "get":
        return print(await call(base, "GET", `/memory/${encodeURIComponent(one(args, "ID"))}`), json, (body) =>
          formatRecord(MemoryWriteResponse.parse(body).record),
        );
      case "rm":
        await call(base, "DELETE", `/memory/${encodeURIComponent(one(args, "ID"))}`);
        if (!json) process.stdout.write("removed\n");
        return 0;
      case "status":
        return print(await call(base, "GET", "/memory/status"), json, (body) => formatStatus(MemoryStatus.parse(body)));
      case "share": {
        const mode = one(args, "on|off or PROJECT");
        if (flags.has("with"))
          return print(await call(base, "POST", "/memory/sharing/shares", grant(mode, flags)), json, (b) =>
            formatSharing(MemorySharing.parse(b)),
          );
        if (mode !== "on" && mode !== "off")
          throw new CliError(`share: expected on, off, or PROJECT --with OWNER, got "${mode}"`, 2);
        return print(
          await call(base, "PUT", "/memory/peer-search", { enabled: mode === "on" }),
          json,
          (body) => `peer memory search ${(body as { enabled: boolean }).enabled ? "on" : "off"}\n`,
        );
      }
      case "unshare":
        return print(
          await call(base, "DELETE", "/memory/sharing/shares", grant(one(args, "PROJECT"), flags)),
          json,
          (b) => formatSharing(MemorySharing.parse(b)),
        );
      case "sharing":
        return print(await call(base, "GET", "/memory/sharing"), json, (b) => formatSharing(MemorySharing.parse(b)));
      default:
        throw unknownChoice(
          "memory subcommand",
          sub,
          ["add", "search", "get", "rm", "status", "share", "unshare", "sharing"],
          "potluck memory --help",
        );
    }
  },
};

async function add(base: string, text: string, flags: Map<string, string>, json: boolean): Promise<number> {
  const request = validated(MemoryWriteRequest, {
    text,
    project: flags.get("project"),
    tags: flags
      .get("tags")
      ?.split(",")
      .map((t) => t.trim())
      .filter((t) => t.length > 0),
    confidence: numberFlag(flags, "confidence"),
    pinned: flags.has("pinned") || undefined,
  });
  const body = await call(base, "POST", "/memory", request);
  return print(body, json, (b) => `${MemoryWriteResponse.parse(b).record.id}\n`);
}

async function search(base: string, query: string, flags: Map<string, string>, json: boolean): Promise<number> {
  const request = validated(MemorySearchRequest, {
    query,
    project: flags.get("project"),
    limit: numberFlag(flags, "limit"),
    minConfidence: numberFlag(flags, "min-confidence"),
    includeCold: flags.has("include-cold") || undefined,
    scope: flags.has("fleet") ? "fleet" : undefined,
    deadlineMs: numberFlag(flags, "deadline-ms"),
  });
  const body = await call(base, "POST", "/memory/search", request);
  return print(body, json, (b) => formatSearch(MemorySearchResponse.parse(b)));
}

/** PROJECT --with OWNER as the sidecar's grant body; both checked here with its schema. */
function grant(project: string, flags: Map<string, string>): ProjectShare {
  const owner = flags.get("with");
  if (owner === undefined) throw new CliError("share: name the other owner with --with OWNER", 2);
  const result = check(ProjectShare, { project, owner });
  if (!result.ok) throw new CliError(result.body.error.message, 2);
  return result.data;
}

/** Checks the body with the same schema the sidecar uses, so a bad flag fails here, naming it. */
function validated<S extends typeof MemoryWriteRequest | typeof MemorySearchRequest>(
  schema: S,
  input: Record<string, unknown>,
) {
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const result = check(schema, defined);
  if (!result.ok) throw new CliError(result.body.error.message, 2);
  return result.data;
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
  } catch (error) {
    throw new CliError(unreachableMessage("sidecar", base, error));
  }
  if (res.status === 204) return undefined;
  const payload: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const parsed = ErrorBody.safeParse(payload);
    throw new CliError(parsed.success ? parsed.data.error.message : `${method} ${path}: HTTP ${res.status}`);
  }
  return payload;
}

function print(body: unknown, json: boolean, format: (body: unknown) => string): number {
  process.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : format(body));
  return 0;
}

function formatSearch(response: MemorySearchResponse): string {
  const lines = response.hits.map(
    (hit) =>
      `${hit.score.toFixed(3)}  ${hit.machine.padEnd(10)} ${hit.record.pinned ? "[pinned] " : ""}${hit.record.text}  (${hit.record.project}, ${hit.record.id})`,
  );
  if (lines.length === 0) lines.push("no memories matched");
  if (response.machines.length > 1) {
    lines.push(
      "",
      ...response.machines.map(
        (m) => `${m.machine}: ${m.status}${m.reason === undefined ? "" : ` — ${m.reason}`} (${m.hits} hits)`,
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}

function formatSharing(sharing: MemorySharing): string {
  const lines = [
    `own machines: ${sharing.peerSearchEnabled ? "may search this machine's memory" : "may not search (potluck memory share on)"}`,
  ];
  if (sharing.shares.length === 0) lines.push("no project is shared with another owner");
  for (const share of sharing.shares) lines.push(`project ${share.project} shared with ${share.owner}`);
  return `${lines.join("\n")}\n`;
}

function formatRecord(record: MemoryWriteResponse["record"]): string {
  return `${record.text}\n  id ${record.id}  project ${record.project}  confidence ${record.confidence}${record.pinned ? "  pinned" : ""}  tags ${record.tags.join(",") || "-"}\n  created ${record.createdAt}  accessed ${record.accessedAt}  embedder ${record.embedderId}\n`;
}

function formatStatus(status: MemoryStatus): string {
  const lines = [
    `${status.records} memories on ${status.machine} (${status.hot} hot, ${status.cold} cold, ${status.pinned} pinned), embedder ${status.embedder.id}`,
    `peer memory search: ${status.peerSearchEnabled ? "on" : "off"}`,
  ];
  for (const f of status.foreign) lines.push(`not searchable: ${f.records} records from embedder ${f.embedderId}`);
  for (const offer of status.embedderOffers ?? [])
    lines.push(
      `embedding model found: ${offer.model} (${offer.source}); to embed memories with it, restart the sidecar with`,
      `  ${offer.setting}`,
      `  (memories embedded by ${status.embedder.id} then stay listed, never searched: vectors of two embedders never mix)`,
    );
  if (status.corrupt.lines > 0)
    lines.push(`corrupt: ${status.corrupt.lines} lines skipped`, ...status.corrupt.samples.map((s) => `  ${s}`));
  for (const a of status.ann) {
    const why = a.rebuildReason === undefined ? "" : ` (saved graph not used: ${a.rebuildReason})`;
    const save = a.saveError === undefined ? "" : `; last save failed: ${a.saveError}`;
    lines.push(`ANN index ${a.project}/${a.tier}: ${a.source}, ${a.indexed} indexed${why}${save}`);
  }
  return `${lines.join("\n")}\n`;
}

function one(args: readonly string[], what: string): string {
  const [value] = args;
  if (value === undefined || args.length !== 1) throw new CliError(`memory: expected exactly one ${what}`, 2);
  return value;
}

function numberFlag(flags: Map<string, string>, name: string): number | undefined {
  const raw = flags.get(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new CliError(`--${name}: expected a number, got "${raw}"`, 2);
  return value;
}
