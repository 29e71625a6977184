/**
 * The fw-watcher keeps Linux nftables rules; on another OS there is nothing for it to read or
 * repair. Said as "not applicable" so a Mac or a Windows PC is never reported as failing for it.
 */
export function firewallNotApplicable(platform: NodeJS.Platform): string | undefined {
  if (platform === "linux") return undefined;
  return `not applicable on this OS (${platform}): the fw-watcher keeps Linux nftables rules; if a VPN blocks the mesh here, allow the mesh interface in the VPN's own settings`;
}
