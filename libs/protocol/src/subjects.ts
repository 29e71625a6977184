import { MachineName, OwnerName } from "./common.js";

/** The default subject root; one NATS server can carry several meshes (and tests) under different roots. */
export const DEFAULT_SUBJECT_ROOT = "potluck";

/**
 * NATS subject names under a root (`potluck` unless configured). Builders validate their token so
 * a name with '.', '*' or '>' can never widen a subscription or publish into another machine's
 * subject.
 */
export function subjectsFor(root: string = DEFAULT_SUBJECT_ROOT) {
  if (!/^[a-z0-9_-]{1,32}$/.test(root))
    throw new TypeError(`invalid NATS subject root ${JSON.stringify(root)}: expected 1-32 of a-z, 0-9, '_' or '-'`);
  return {
    root,
    heartbeat: (machine: string) => `${root}.heartbeat.${token(MachineName, machine)}`,
    heartbeatAll: `${root}.heartbeat.*`,
    rosterChanged: `${root}.roster.changed`,
    usage: (owner: string) => `${root}.usage.${token(OwnerName, owner)}`,
    usageAll: `${root}.usage.*`,
    fwStatus: (machine: string) => `${root}.fw.status.${token(MachineName, machine)}`,
    fwStatusAll: `${root}.fw.status.*`,
    /** JetStream stream for usage events: they must not be lost. Name is unique per root. */
    usageStream: { name: `${root.toUpperCase().replaceAll("-", "_")}_USAGE`, subjects: [`${root}.usage.*`] },
  } as const;
}
export type SubjectSet = ReturnType<typeof subjectsFor>;

/** The subjects under the default root. Tests use `subjectsFor(uniqueRoot)` to stay isolated. */
export const Subjects = subjectsFor();

function token(schema: typeof MachineName | typeof OwnerName, value: string): string {
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new TypeError(
      `invalid NATS subject token ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message ?? "invalid"}`,
    );
  return parsed.data;
}
