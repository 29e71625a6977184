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

/** The commands that start, restart and show the log of an installed service, as one OS runs them. */
export interface ServiceCommands {
  start: string;
  restart: string;
  logs: string;
}

/**
 * How to start, restart and read the log of a service installed by `potluck service install` (as
 * root: systemd system units, LaunchDaemons, WinSW Windows services), on the machine's OS. A fix
 * in diagnostics quotes these, so it names exactly what was installed. An OS that is not known
 * (a peer that cannot be asked) gets the service's name and where to look it up.
 */
export function serviceCommands(os: string | undefined, key: ServiceKey): ServiceCommands {
  const name = ServiceNames[key];
  switch (os) {
    case "linux":
      return {
        start: `sudo systemctl start ${name}`,
        restart: `sudo systemctl restart ${name}`,
        logs: `journalctl -u ${name}`,
      };
    case "darwin":
      return {
        start: `sudo launchctl kickstart system/${launchdLabel(key)}`,
        restart: `sudo launchctl kickstart -k system/${launchdLabel(key)}`,
        logs: `tail -n 100 /Library/Logs/Potluck/${name}.log`,
      };
    case "win32":
      return {
        start: `Start-Service ${name} (PowerShell as administrator)`,
        restart: `Restart-Service ${name} (PowerShell as administrator)`,
        logs: `Get-Content $env:ProgramData\\Potluck\\logs\\${name}.out.log -Tail 100`,
      };
    default:
      return {
        start: `start its ${name} service (potluck service status there shows how)`,
        restart: `restart its ${name} service (potluck service status there shows how)`,
        logs: `the ${name} service's log (potluck service status there says where)`,
      };
  }
}
