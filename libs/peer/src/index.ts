export { PeerClient, peerAgents, type PeerAddress, type PeerAgents, type PeerClientOptions } from "./client.js";
export { PeerClientLimits, ProbeSizes, RosterLimits, SigningLimits } from "./limits.js";
export { classifyNetworkError, NetworkErrorKind, type NetworkFailure } from "./network-error.js";
export { PeerCallError, PeerErrorKind } from "./peer-error.js";
export { ReplayCache } from "./replay-cache.js";
export { coordinatorRoster, fileRoster, RosterUnavailableError, staticRoster, type PeerRoster } from "./roster.js";
export {
  messageSigningParts,
  signedMessageHeaders,
  signedMessageMethod,
  verifyDurableMessage,
  verifyMessage,
  type ReceivedMessage,
} from "./signed-messages.js";
export {
  canonicalString,
  generateIdentity,
  privateKeyFromPem,
  publicKeyFromBase64,
  publicKeyToBase64,
  SignedAudience,
  signRequest,
  verifyRequest,
  VerifyFailure,
  type KeyLookup,
  type RequestSigner,
  type SignedParts,
  type VerifyResult,
} from "./signing.js";
export {
  coordinatorKeyFingerprint,
  fingerprintOfToken,
  signCoordinatorAnswer,
  tokenFingerprintSeparator,
  verifyCoordinatorAnswer,
  type AnswerCheck,
} from "./signing-coordinator.js";
