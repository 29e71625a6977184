// One valid example of every request body and message, used by the fuzz tests to build
// malformed variants (a field removed or given a wrong type) that must be rejected by name.
import type { z } from "zod";
import * as p from "../src/index.js";

const key = "q".repeat(42) + "A=";
const now = "2026-11-27T00:00:00.000Z";

export const samples: Array<{ name: string; schema: z.ZodType; valid: Record<string, unknown> }> = [
  {
    name: "ChatCompletionRequest",
    schema: p.ChatCompletionRequest,
    valid: { model: "tiny", messages: [{ role: "user", content: "hi" }], stream: true },
  },
  {
    name: "PeerInferRequest",
    schema: p.PeerInferRequest,
    valid: {
      jobId: "job-1",
      model: "tiny",
      messages: [{ role: "user", content: "hi" }],
      maxTokens: 8,
      requester: { machine: "mac", owner: "home" },
    },
  },
  { name: "ProbeRequest", schema: p.ProbeRequest, valid: { payload: "x".repeat(1400), model: "tiny" } },
  { name: "EmbeddingsRequest", schema: p.EmbeddingsRequest, valid: { input: ["a", "b"] } },
  {
    name: "MemoryWriteRequest",
    schema: p.MemoryWriteRequest,
    valid: {
      text: "the wifi password is in the drawer",
      project: "home",
      tags: ["house"],
      confidence: 0.9,
      pinned: false,
    },
  },
  { name: "MemorySearchRequest", schema: p.MemorySearchRequest, valid: { query: "wifi", limit: 5, scope: "fleet" } },
  { name: "TokenCreateRequest", schema: p.TokenCreateRequest, valid: { reusable: false, ttlS: 600 } },
  {
    name: "EnrollRequest",
    schema: p.EnrollRequest,
    valid: {
      token: "t".repeat(32),
      name: "linux",
      owner: "home",
      wireguardPublicKey: key,
      identityPublicKey: key,
      endpoints: ["10.0.0.2:51820"],
    },
  },
  {
    name: "Heartbeat",
    schema: p.Heartbeat,
    valid: { machine: "linux", wireguardPublicKey: key, seq: 1, sentAt: now, status: "ok" },
  },
  { name: "RosterChanged", schema: p.RosterChanged, valid: { version: 3, reason: "enrolled", machine: "linux" } },
  {
    name: "UsageEvent",
    schema: p.UsageEvent,
    valid: {
      eventId: "ev-1",
      jobId: "job-1",
      kind: "earn",
      account: "alice",
      counterparty: "bob",
      servedBy: "linux",
      model: "tiny",
      tokens: 12,
      amount: 1500,
      at: now,
    },
  },
  {
    name: "LedgerEventRequest",
    schema: p.LedgerEventRequest,
    valid: { kind: "spend", eventId: "ev-2", account: "alice", payee: "bob", amount: 10 },
  },
  {
    name: "FwStatus",
    schema: p.FwStatus,
    valid: {
      machine: "linux",
      interfaceName: "potluck0",
      vpns: { tailscale: false, mullvad: true },
      rules: [{ family: "inet", table: "mullvad", chain: "input", rule: "iifname potluck0 accept", state: "present" }],
      intact: true,
      lastReapplyAt: null,
      reapplyCount: 0,
      lastError: null,
      checkedAt: now,
    },
  },
  {
    name: "DiagnosticsReport",
    schema: p.DiagnosticsReport,
    valid: {
      from: "mac",
      peer: "linux",
      usable: true,
      firstFailure: null,
      layers: [
        {
          code: "tunnel",
          title: "Tunnel",
          severity: "high",
          status: "ok",
          message: "handshake 3 s ago",
          checkedAt: now,
        },
      ],
      generatedAt: now,
    },
  },
];
