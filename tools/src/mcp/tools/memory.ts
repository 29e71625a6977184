import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { MemorySearchRequest, MemorySearchResponse, MemoryWriteRequest, MemoryWriteResponse } from "@potluck/protocol";
import { z } from "zod";
import { answer, guarded } from "../result.js";
import { SidecarError, sidecarJson, type SidecarTarget } from "../sidecar.js";

/** Each call may take this long; a fleet search carries its own, shorter deadline to peers. */
const requestTimeoutMs = 30_000;

// The sidecar's own request schemas give each field its bounds, so the tool and the route agree on them.
const search = MemorySearchRequest.shape;
const SearchInput = z.strictObject({
  query: search.query.describe("what to look for, in words (semantic search)"),
  project: search.project.describe("only this project's memories; leave out for every project"),
  scope: search.scope.describe(
    "local: this machine only; fleet: also every own machine that opted in to memory search (potluck memory share on)",
  ),
  limit: search.limit.describe("most hits to return"),
  min_confidence: search.minConfidence.describe("skip memories below this confidence (0-1)"),
  include_cold: search.includeCold.describe("also search memories not used for a long time"),
});

const write = MemoryWriteRequest.shape;
const AddInput = z.strictObject({
  text: write.text.describe("the memory itself, in words"),
  project: write.project.describe("the project it belongs to"),
  tags: write.tags.describe("labels for filtering and reading"),
  confidence: write.confidence.describe("how sure this is (0-1)"),
  pinned: write.pinned.describe("keep it found even when it is not used for a long time"),
});

export function registerMemory(server: McpServer, sidecar: SidecarTarget): void {
  server.registerTool(
    "memory_search",
    {
      title: "Search the household's memory",
      description:
        "Searches the memories stored on this machine, or with scope fleet on every own machine that shares its " +
        "memory, and returns the best matches with the machine each came from. With fleet, each machine's answer " +
        "(answered, disabled, unreachable, timeout) is listed too, so a silent machine is not mistaken for no hits.",
      inputSchema: SearchInput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (input) =>
      guarded(async () => {
        const body = {
          query: input.query,
          project: input.project,
          scope: input.scope,
          limit: input.limit,
          minConfidence: input.min_confidence,
          includeCold: input.include_cold,
        };
        const parsed = MemorySearchResponse.safeParse(
          await sidecarJson(sidecar, "POST", "/memory/search", { body, timeoutMs: requestTimeoutMs }),
        );
        if (!parsed.success)
          throw new SidecarError("the sidecar's search answer had an unexpected shape; is it the same version?");
        const hits = parsed.data.hits.map((h) => ({
          score: h.score,
          machine: h.machine,
          id: h.record.id,
          project: h.record.project,
          text: h.record.text,
          tags: h.record.tags,
        }));
        const lines = hits.map((h) => `${h.score.toFixed(3)}  ${h.machine}  ${h.project}  ${h.text}  (${h.id})`);
        if (lines.length === 0) lines.push("no memories matched");
        if (input.scope === "fleet")
          lines.push(
            "",
            ...parsed.data.machines.map(
              (m) => `${m.machine}: ${m.status}${m.reason === undefined ? "" : ` — ${m.reason}`} (${m.hits} hits)`,
            ),
          );
        return answer(lines.join("\n"), { hits, machines: parsed.data.machines });
      }),
  );

  server.registerTool(
    "memory_add",
    {
      title: "Remember something",
      description:
        "Stores a memory on this machine, in a project, where memory_search (and, once this machine shares its " +
        "memory, searches from the household's other machines) finds it. Returns the new memory's id.",
      inputSchema: AddInput,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    (input) =>
      guarded(async () => {
        const parsed = MemoryWriteResponse.safeParse(
          await sidecarJson(sidecar, "POST", "/memory", { body: input, timeoutMs: requestTimeoutMs }),
        );
        if (!parsed.success)
          throw new SidecarError("the sidecar's write answer had an unexpected shape; is it the same version?");
        const { record } = parsed.data;
        return answer(`remembered in project ${record.project} as ${record.id}`, {
          id: record.id,
          project: record.project,
          text: record.text,
          tags: record.tags,
          confidence: record.confidence,
          pinned: record.pinned,
        });
      }),
  );
}
