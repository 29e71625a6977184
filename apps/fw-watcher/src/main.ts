import { drainOnSignal, loadConfigOrExit, messageOf, serveApp, serviceLogger } from "@potluck/service";
import { parseInvocationOrExit, usage } from "./cli.js";
import { loadFwWatcherConfig } from "./config.js";
import { Firewall } from "./firewall.js";
import { runOneShot } from "./modes.js";
import { commandRunner } from "./nft/runner.js";
import { notApplicableHere } from "./platform.js";
import { startFwWatcherService } from "./service.js";

const log = serviceLogger("fw-watcher");
const { mode, json, help } = parseInvocationOrExit(process.argv.slice(2));
if (help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const notApplicable = notApplicableHere(process.platform);
if (notApplicable !== undefined) {
  process.stdout.write(`potluck-fw-watcher: ${notApplicable}\n`);
  process.exit(0);
}
const config = loadConfigOrExit("potluck-fw-watcher", () => loadFwWatcherConfig());
const firewall = new Firewall(
  commandRunner(config.POTLUCK_FW_NFT.split(" ").filter(Boolean)),
  config.POTLUCK_INTERFACE,
);
if (mode !== "watch") {
  process.exitCode = await runOneShot(firewall, { mode, json }, log);
} else {
  const service = startFwWatcherService(config, { log, firewall });
  const details = { interfaceName: config.POTLUCK_INTERFACE, intervalS: config.POTLUCK_FW_WATCH_INTERVAL };
  // The fw-watcher is loopback only. A taken port is not transient: say so once and let systemd
  // (Restart=on-failure) try again later.
  const server = await serveApp(service.app, {
    port: config.POTLUCK_FW_PORT,
    hostname: "127.0.0.1",
    log,
    name: "fw-watcher",
    details,
  }).catch((error: unknown) => {
    log.fatal({ err: messageOf(error), port: config.POTLUCK_FW_PORT }, "status server failed; exiting");
    process.exit(1);
  });
  drainOnSignal({ log, close: [service, server] });
}
