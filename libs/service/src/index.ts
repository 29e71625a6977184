export { ArgsError, closestName, parseFlags, type FlagSpec, type ParsedFlags } from "./args.js";
export { limitBody, type BodyLimitOptions } from "./body-limit.js";
export { requestHeader } from "./request-header.js";
export {
  ConfigError,
  ConfigFields,
  ConfigHelp,
  flagNameFor,
  loadConfigOrExit,
  parseConfig,
  splitUrlList,
  type ConfigFlagOptions,
} from "./config.js";
export { isTransientDbError } from "./db-transient.js";
export { jsonErrors } from "./errors.js";
export { platformDataDir, resolveDataDir, type DataDirContext } from "./data-dir.js";
export { drainOnSignal } from "./lifecycle.js";
export { messageOf, silentLogger, type LogFn, type Logger } from "./logger.js";
export { humanLogLine, serviceLogger } from "./log-line.js";
export { scrapedCounter } from "./metrics.js";
export { isLoopbackAddress, isLoopbackHost, loopbackHosts } from "./loopback.js";
export { loopbackGuard, loopbackNameRefusal, nodeRemoteAddress, type LoopbackGuardOptions } from "./loopback-guard.js";
export { connectNats, NatsConnectLimits, NatsUnavailableError, type ConnectNatsOptions } from "./nats.js";
export { runService, type RunServiceOptions } from "./run.js";
export { serveApp, type ServedApp, type ServeOptions } from "./serve.js";
export {
  ensureUsageStream,
  usageReplicasFromEnv,
  usageReplicasMax,
  usageStreamConfig,
  type UsageStreamOptions,
} from "./usage-stream.js";
