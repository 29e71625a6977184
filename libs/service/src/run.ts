import { ConfigError, loadConfigOrExit } from "./config.js";
import { drainOnSignal } from "./lifecycle.js";
import { messageOf, type Logger } from "./logger.js";
import { serveApp, type ServedApp, type ServeOptions } from "./serve.js";

type Fetchable = Parameters<typeof serveApp>[0];

export interface RunServiceOptions<C, S extends { app: Fetchable; close(): Promise<void> }> {
  /** "sidecar": lines are prefixed `potluck-sidecar:` and the log says "sidecar listening". */
  name: string;
  log: Logger;
  loadConfig: () => C;
  start: (config: C) => Promise<S>;
  /** Where to listen, and what the "listening" line should add (database kind, key, …). */
  listen: (config: C, service: S) => Pick<ServeOptions, "port" | "hostname" | "details">;
}

/**
 * A service's whole main: configuration, start, listen, drain on a signal. Every app runs this one
 * function so the order is the same everywhere: a bad setting exits 2 before anything opens, a
 * failed start exits 1 with one line naming why, and SIGTERM stops accepting before the service
 * closes.
 */
export async function runService<C, S extends { app: Fetchable; close(): Promise<void> }>(
  options: RunServiceOptions<C, S>,
): Promise<void> {
  const { name, log } = options;
  const command = `potluck-${name}`;
  const config = loadConfigOrExit(command, options.loadConfig);
  try {
    const service = await options.start(config);
    // The handler is in place before the "listening" line: a supervisor that signals the moment
    // it sees that line still gets a drain, not an abrupt exit.
    let server: ServedApp | undefined;
    drainOnSignal({
      log,
      close: async () => {
        await server?.close();
        await service.close();
      },
    });
    server = await serveApp(service.app, { ...options.listen(config, service), log, name });
  } catch (error) {
    // A setting that is only checked while starting (a model path, say) is still a setting.
    process.stderr.write(`${command}: ${messageOf(error)}\n`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  }
}
