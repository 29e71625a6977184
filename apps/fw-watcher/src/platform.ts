/**
 * The fw-watcher edits Linux nftables. On macOS or Windows there is no such firewall to keep
 * open, so it says so and exits 0 (a service manager must not restart it in a loop).
 */
export function notApplicableHere(platform: NodeJS.Platform): string | undefined {
  if (platform === "linux") return undefined;
  return `not applicable on this OS (${platform}): the fw-watcher keeps Linux nftables rules; nothing to do`;
}
