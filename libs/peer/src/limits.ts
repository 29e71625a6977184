import { CoordinatorLimits } from "@potluck/protocol";

/**
 * Every bound the peer library keeps, in one place: signing, calls to other sidecars, and the
 * roster. Each says why it has the value it has and how it relates to the others.
 */

export const SigningLimits = {
  /** How far a request's timestamp may be from the verifier's clock, either way. */
  clockSkewMsMax: 60_000,
  /**
   * Remembered nonces over all signers; when full, the signer holding the most forgets its oldest (see ReplayCache in
   * replay-cache.ts).
   */
  nonceCacheEntriesMax: 100_000,
  /**
   * Remembered nonces of one signer within the window (about 160 requests/s for a minute); past
   * this its own oldest are forgotten and only its own floor rises. A tenth of the whole cache, so
   * one signer can never fill it and push out another signer's nonces.
   */
  nonceSignerEntriesMax: 10_000,
  nonceCharsMax: 64,
  /**
   * Imported identity keys kept (signing.ts): every machine of a full roster and some rotated keys.
   * Smaller, a coordinator hearing a full roster's heartbeats in turn clears it every few beats and
   * imports a key on every beat.
   */
  importedKeysMax: CoordinatorLimits.rosterMachinesMax + 1_024,
  signatureCharsMax: 128,
} as const;

/**
 * The two probe sizes every caller uses, routing and diagnostics alike, so that the router's probe
 * and the diagnosis that explains its failure test the same packets on the same path.
 *
 * - `smallBytes` fits one mesh packet each way with its headers: it proves the path carries
 *   anything at all.
 * - `largeBytes` cannot fit one 1280-byte mesh packet (the smallest MTU WireGuard must carry), so
 *   the probe and its echo need full-size packets both ways: exactly the packets an MTU black hole
 *   eats while small ones pass. The router probes with this size, since a reply streams in
 *   full-size packets too; a path that passes only the small probe cannot serve a prompt.
 */
export const ProbeSizes = {
  smallBytes: 32,
  largeBytes: 1_400,
} as const;

/** Bounds on calls to another sidecar's /peer/* API. */
export const PeerClientLimits = {
  /**
   * A probe or capabilities call that takes longer counts as a failed data plane (callers may pass a shorter signal).
   */
  probeTimeoutMs: 5_000,
  /** Connect + response headers of /peer/infer (the peer may queue us briefly). */
  inferStartTimeoutMs: 30_000,
  /** Silence between two stream chunks after which the peer is given up on (not a hang). */
  streamIdleMsMax: 30_000,
  /** One NDJSON line may not exceed this; a token chunk is a few bytes. */
  lineBytesMax: 256 * 1024,
  /** A probe, capabilities, search or error answer larger than this is refused, not buffered. */
  responseBytesMax: 1024 * 1024,
  /**
   * Connections per peer and pool: probes run one at a time per routing decision, and concurrent
   * diagnostics of one path share a run, so a few sockets are plenty; streams are bounded by the
   * peer's own queue.
   */
  probeSocketsPerPeerMax: 4,
  streamSocketsPerPeerMax: 16,
} as const;

/**
 * How a roster is kept fresh. Every signed peer request looks up its signer's key, so the roster
 * in hand answers at once and checks for changes behind the answer; only a source with no roster
 * yet waits.
 */
export const RosterLimits = {
  /**
   * A roster file's modification time is checked at most this often: an async stat on every
   * signed request costs a thread-pool round trip on the main thread (BENCHMARKS.md, retrieval),
   * and a changed key of a known machine is still seen within this interval and one request.
   */
  fileRecheckMs: 1_000,
  /** A roster file is a few kilobytes a machine; this bounds a wrong path pointing at something huge. */
  fileBytesMax: 8 * 1024 * 1024,
  /** The coordinator's roster is re-read this often, and at once when the coordinator announces a change. */
  coordinatorRefreshMs: 10_000,
  /**
   * A machine that enrolled a moment ago may sign before the next refresh, so an unknown name
   * re-reads the coordinator's roster early, at most this often, so unknown callers cannot make
   * this machine hammer the coordinator. A file is re-read at once (a stat is cheap).
   */
  coordinatorEarlyRefreshMinMs: 2_000,
  /** One roster fetch from the coordinator; the roster in hand keeps answering meanwhile. */
  coordinatorFetchTimeoutMs: 5_000,
} as const;
