import { Hono } from "hono";

/**
 * The Ollama release whose API these routes follow (structured outputs, tool calls in streams,
 * `/api/embed` `dimensions`, `/api/ps` `context_length`). Clients gate features on it, so it says what is served, not
 * Potluck's own version, which is under `potluck`.
 */
export const ollamaApiVersion = "0.12.0";

/** GET /api/version. */
export function versionRoute(potluckVersion: string) {
  return new Hono().get("/api/version", (c) => c.json({ version: ollamaApiVersion, potluck: potluckVersion }));
}
