import { MachineName, OwnerName } from "./common.js";

/**
 * NATS subject names. Builders validate their token so a name with '.', '*' or '>' can never
 * widen a subscription or publish into another machine's subject.
 */
export const Subjects = {
  heartbeat: (machine: string) => `potluck.heartbeat.${token(MachineName, machine)}`,
  heartbeatAll: "potluck.heartbeat.*",
  rosterChanged: "potluck.roster.changed",
  usage: (owner: string) => `potluck.usage.${token(OwnerName, owner)}`,
  usageAll: "potluck.usage.*",
  fwStatus: (machine: string) => `potluck.fw.status.${token(MachineName, machine)}`,
  fwStatusAll: "potluck.fw.status.*",
} as const;

/** JetStream streams; usage events must not be lost, so they live in a stream. */
export const Streams = {
  usage: { name: "POTLUCK_USAGE", subjects: ["potluck.usage.*"] },
} as const;

function token(schema: typeof MachineName | typeof OwnerName, value: string): string {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new TypeError(`invalid NATS subject token ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}
