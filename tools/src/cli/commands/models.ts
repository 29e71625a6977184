import { CliError, unknownChoice, type Command } from "../command.js";
import { formatBytes, table, untilUnload } from "../../models/format.js";
import { pullView, type PullLine } from "../../models/pull-view.js";
import {
  call,
  getJson,
  sidecarBase,
  type ModelEntry,
  type ModelList,
  type PulledModelInfo,
} from "../../models/sidecar-api.js";

const usage = `Usage: potluck models ls [--all] [--json] [--url URL]
       potluck models ps [--json] [--url URL]
       potluck models show MODEL [--json] [--url URL]
       potluck models pull REF [--sha256 HEX] [--url URL]
       potluck models rm MODEL [--url URL]

  ls     this machine's models: state, source, size. --all: every machine's in the household,
         where each lives and its state; a machine that does not answer is listed as unreachable.
  ps     the models loaded here: memory, backend, GPU layers and when each unloads.
  show   one model: every field the sidecar knows, every machine that has it, and for a model
         Potluck pulled, where it came from and its checksum.
  pull   downloads a GGUF (https://…/model.gguf or hf:ORG/REPO/FILE.gguf) into Potluck's own
         models folder (DATA_DIR/models/pulled) and loads it. Resumes an interrupted download;
         verifies --sha256, else the checksum the server states (Hugging Face does). A progress
         bar with ETA on a terminal, plain lines otherwise.
  rm     removes a model Potluck pulled (unloads it, deletes its files). Models found elsewhere
         (POTLUCK_MODELS, Ollama, LM Studio, Hugging Face) are never deleted.

The sidecar is http://127.0.0.1:$POTLUCK_PORT unless --url is given.`;

/** A pull streams for as long as the download takes; this bounds a stuck one. */
const pullTimeoutMs = 24 * 60 * 60_000;

export const modelsCommand: Command = {
  name: "models",
  summary: "the household's models: ls, ps, show, pull, rm",
  usage,
  flags: { strings: ["url", "sha256"], booleans: ["all", "json"] },
  async run(_argv, { flags, positionals }) {
    const [sub, ...args] = positionals;
    const base = sidecarBase(flags.get("url"));
    const json = flags.has("json");
    const only = (names: string[]) => {
      for (const flag of flags.keys())
        if (!names.includes(flag)) throw new CliError(`--${flag} does not apply to potluck models ${sub}`, 2);
    };
    const operand = (what: string) => {
      if (args.length !== 1) throw new CliError(`expected "potluck models ${sub} ${what}"`, 2);
      return args[0]!;
    };
    switch (sub) {
      case "ls":
        only(["url", "all", "json"]);
        if (args.length > 0) throw new CliError(`potluck models ls takes no operand (got ${args.join(" ")})`, 2);
        return ls(base, flags.has("all"), json);
      case "ps":
        only(["url", "json"]);
        if (args.length > 0) throw new CliError(`potluck models ps takes no operand (got ${args.join(" ")})`, 2);
        return ps(base, json);
      case "show":
        only(["url", "json"]);
        return show(base, operand("MODEL"), json);
      case "pull":
        only(["url", "sha256"]);
        return pull(base, operand("REF"), flags.get("sha256"));
      case "rm":
        only(["url"]);
        return rm(base, operand("MODEL"));
      default:
        throw unknownChoice("models subcommand", sub, ["ls", "ps", "show", "pull", "rm"], "potluck models --help");
    }
  },
};

async function ls(base: string, all: boolean, json: boolean): Promise<number> {
  const list = await getJson<ModelList>(base, all ? "/v1/models" : "/v1/models?scope=local");
  if (json) {
    process.stdout.write(`${JSON.stringify(list)}\n`);
    return 0;
  }
  const rows = [
    all ? ["MODEL", "MACHINE", "STATE", "SOURCE", "SIZE", "NOTES"] : ["MODEL", "STATE", "SOURCE", "SIZE", "NOTES"],
  ];
  for (const m of list.data)
    for (const at of all ? m.potluck.locations : m.potluck.locations.filter((l) => l.relation === "local")) {
      const where =
        at.relation === "local" ? `${at.machine} (here)` : at.relation === "own" ? at.machine : `${at.machine} (peer)`;
      const cells = [
        m.id,
        stateOf(at),
        m.potluck.source ?? "-",
        formatBytes(m.potluck.size_bytes),
        notes(m, at.reason),
      ];
      rows.push(all ? [cells[0]!, where, ...cells.slice(1)] : cells);
    }
  if (rows.length === 1) process.stdout.write(all ? "no models in the household\n" : "no models on this machine\n");
  else process.stdout.write(table(rows));
  for (const machine of list.potluck.machines.filter((x) => x.status === "unreachable"))
    process.stdout.write(
      `${machine.machine}: unreachable at ${machine.error?.layer ?? "?"} ` +
        `(${machine.error?.message ?? "no answer"}); its models are not listed\n`,
    );
  return 0;
}

async function ps(base: string, json: boolean): Promise<number> {
  const list = await getJson<ModelList>(base, "/v1/models?scope=local");
  const loaded = list.data.filter((m) => m.potluck.state === "ready" || m.potluck.state === "loading");
  if (json) {
    process.stdout.write(`${JSON.stringify({ models: loaded })}\n`);
    return 0;
  }
  if (loaded.length === 0) {
    process.stdout.write("no model is loaded on this machine\n");
    return 0;
  }
  const rows = [["MODEL", "STATE", "RAM", "VRAM", "BACKEND", "GPU LAYERS", "UNLOADS"]];
  for (const m of loaded) {
    const r = m.potluck.runtime;
    rows.push([
      m.id,
      stateOf(m.potluck),
      formatBytes(r?.ramBytes),
      formatBytes(r?.vramBytes),
      r?.backend ?? "-",
      r === undefined ? "-" : String(r.gpuLayers),
      untilUnload(r?.expiresAt),
    ]);
  }
  process.stdout.write(table(rows));
  if (loaded.some((m) => m.potluck.runtime === undefined))
    process.stdout.write("(-: this sidecar does not report that for the model)\n");
  return 0;
}

async function show(base: string, id: string, json: boolean): Promise<number> {
  const list = await getJson<ModelList>(base, "/v1/models");
  const model = list.data.find((m) => m.id === id);
  if (model === undefined)
    throw new CliError(
      `no machine in the household has a model called ${JSON.stringify(id)}; see potluck models ls --all`,
    );
  const pulled = (await getJson<{ models: PulledModelInfo[] }>(base, "/v1/potluck/models/pulled")).models.find(
    (m) => m.id === id,
  );
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...model, pulled: pulled ?? null })}\n`);
    return 0;
  }
  const p = model.potluck;
  const fields: Array<[string, string | undefined]> = [
    ["model", model.id + (p.test_model ? " (TEST MODEL: random weights)" : "")],
    ["kind", p.kind],
    ["source", p.source],
    ["size", p.size_bytes === undefined ? undefined : formatBytes(p.size_bytes)],
    ["family", p.family],
    ["quantization", p.quantization],
    ["parameters", p.parameters?.toLocaleString("en-US")],
    ["context", p.context_size?.toString()],
    ["pulled from", pulled?.ref],
    ["sha256", pulled === undefined ? undefined : (pulled.sha256 ?? "not verified (none was known)")],
    ["pulled at", pulled?.pulledAt],
  ];
  for (const [name, value] of fields)
    if (value !== undefined) process.stdout.write(`${`${name}:`.padEnd(14)}${value}\n`);
  process.stdout.write("machines:\n");
  for (const at of p.locations) {
    const r = at.runtime;
    const runtime =
      r === undefined
        ? ""
        : ` · ${r.backend}, ${r.gpuLayers} GPU layers, RAM ${formatBytes(r.ramBytes)}, ` +
          `VRAM ${formatBytes(r.vramBytes)}, unloads ${untilUnload(r.expiresAt)}`;
    process.stdout.write(
      `  ${at.machine} (${at.relation === "local" ? "here" : at.relation}): ${stateOf(at)}${runtime}\n`,
    );
  }
  return 0;
}

async function pull(base: string, ref: string, sha256: string | undefined): Promise<number> {
  const res = await call(
    base,
    "/v1/potluck/models/pull",
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ref, ...(sha256 === undefined ? {} : { sha256 }) }),
    },
    pullTimeoutMs,
  );
  const view = pullView(process.stdout, process.stdout.isTTY === true);
  let last: PullLine | undefined;
  for await (const line of ndjson(res.body!)) {
    last = line;
    view.line(line);
  }
  view.end();
  if (last?.status === "error")
    throw new CliError(`pull failed: ${last.error?.message ?? "no reason given"} (${last.error?.code})`);
  if (last?.status !== "success") throw new CliError("pull failed: the sidecar ended the stream without a result");
  const verified =
    last.sha256 === null || last.sha256 === undefined ? "no checksum known" : `sha256 ${last.sha256} verified`;
  process.stdout.write(
    last.already === true
      ? `${last.id} was already pulled (${last.path})\n`
      : `pulled ${last.id}: ${formatBytes(last.sizeBytes)} in ${last.path}, ${verified}; loaded\n`,
  );
  return 0;
}

async function rm(base: string, id: string): Promise<number> {
  const res = await call(base, `/v1/potluck/models/${encodeURIComponent(id)}`, { method: "DELETE" });
  const body = (await res.json()) as { removed: string; files: string[] };
  process.stdout.write(`removed ${body.removed} (${body.files.join(", ")})\n`);
  return 0;
}

function stateOf(at: { state: string; progress?: number }): string {
  return at.state === "loading" && at.progress !== undefined ? `loading ${Math.round(at.progress * 100)}%` : at.state;
}

function notes(m: ModelEntry, reason: string | undefined): string {
  return [m.potluck.test_model ? "TEST MODEL" : "", reason ?? ""].filter(Boolean).join("; ");
}

/** NDJSON lines as they arrive; a line is a small object, so a line longer than this is a broken stream. */
const lineCharsMax = 64 * 1024;
async function* ndjson(body: ReadableStream<Uint8Array>): AsyncGenerator<PullLine> {
  const decoder = new TextDecoder();
  let buffered = "";
  const reader = body.getReader();
  for (let read = await reader.read(); read.done !== true; read = await reader.read()) {
    buffered += decoder.decode(read.value, { stream: true });
    for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
      const text = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (text.length > 0) yield JSON.parse(text) as PullLine;
    }
    if (buffered.length > lineCharsMax) throw new CliError("the sidecar's pull stream sent a line too long to be one");
  }
}
