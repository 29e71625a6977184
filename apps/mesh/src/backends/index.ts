import { darwinBackend } from "./darwin.js";
import { externalBackend } from "./external.js";
import { linuxBackend } from "./linux.js";
import { backendNames, type BackendName, type MeshBackend } from "./plan.js";
import { windowsBackend } from "./windows.js";

export { defaultConfigOut } from "./external.js";
export { formatPlan, withoutKey } from "./format.js";
export { linuxInterfaceSteps } from "./linux.js";
export { persistentKeepaliveS } from "./peer-steps.js";
export {
  backendNames,
  executePlan,
  machineProbe,
  type BackendName,
  type MeshBackend,
  type Plan,
  type PlanEffects,
  type PlanInput,
  type Probe,
  type Step,
} from "./plan.js";
export { hubOf, spokeConfig } from "./spoke.js";

const backends: Record<BackendName, MeshBackend> = {
  linux: linuxBackend,
  darwin: darwinBackend,
  windows: windowsBackend,
  external: externalBackend,
};

/**
 * The backend for `--mesh NAME`, else for the OS. An OS Potluck cannot drive (FreeBSD, a phone)
 * gets `external`: a config for the user's own WireGuard app always works.
 */
export function chooseBackend(
  requested: string | undefined,
  platform: NodeJS.Platform = process.platform,
): MeshBackend {
  if (requested !== undefined) {
    if (!isBackendName(requested))
      throw new Error(`--mesh expects one of ${backendNames.join(", ")}, not ${JSON.stringify(requested)}`);
    return backends[requested];
  }
  if (platform === "linux" || platform === "darwin") return backends[platform];
  if (platform === "win32") return backends.windows;
  return backends.external;
}

export function isBackendName(name: string): name is BackendName {
  return (backendNames as readonly string[]).includes(name);
}
