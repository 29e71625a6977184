import type { LayerCode } from "@potluck/protocol";
import { NetworkErrorKind } from "./network-error.js";

/**
 * How a peer call failed: a network failure (see network-error.ts), an HTTP error status, or an answer that breaks the
 * protocol.
 */
export const PeerErrorKind = { ...NetworkErrorKind, http: "http", invalid: "invalid" } as const;
export type PeerErrorKind = (typeof PeerErrorKind)[keyof typeof PeerErrorKind];

/**
 * A failed call to another sidecar, with the layer it failed at (for routing's "which layer
 * failed" answer) and its kind (for diagnostics' classification). An HTTP error keeps the
 * protocol's error code and message from the body when it had them.
 */
export class PeerCallError extends Error {
  override name = "PeerCallError";
  readonly kind: PeerErrorKind;
  /** The `error.code` of the peer's error body, when it sent one. */
  readonly code: string | undefined;
  /** The `error.message` of the peer's error body (or the start of a body that is not one). */
  readonly serverMessage: string | undefined;

  constructor(
    readonly layer: LayerCode,
    message: string,
    readonly status?: number,
    options: { cause?: unknown; kind?: PeerErrorKind; code?: string; serverMessage?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = options.kind ?? (status === undefined ? PeerErrorKind.unreachable : PeerErrorKind.http);
    this.code = options.code;
    this.serverMessage = options.serverMessage;
  }
}
