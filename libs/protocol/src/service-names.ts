/**
 * The names Potluck's services are installed under (`potluck service install`): the systemd unit
 * (NAME.service), the Windows service id, and after the prefix the launchd label. Diagnostics'
 * fixes name services from here, so a fix says exactly what was installed.
 */
export const ServiceNames = {
  sidecar: "potluck-sidecar",
  mesh: "potluck-mesh",
  coordinator: "potluck-coordinator",
  ledger: "potluck-ledger",
  nats: "potluck-nats",
  fwWatcher: "potluck-fw-watcher",
} as const;

export type ServiceKey = keyof typeof ServiceNames;

/** launchd labels are reverse-DNS by Apple's convention: potluck-sidecar → org.potluck.sidecar. */
export function launchdLabel(key: ServiceKey): string {
  return `org.potluck.${ServiceNames[key].replace(/^potluck-/, "")}`;
}
