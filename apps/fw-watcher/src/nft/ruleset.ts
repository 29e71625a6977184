import { z } from "zod";
import { NftError } from "./runner.js";

/**
 * The parts of `nft -j list ruleset` the watcher reads. Only tables, chains and rules are parsed;
 * every other object (sets, maps, counters, flowtables, …) is skipped, and unknown fields are
 * kept out of the way with loose objects, so a newer nft or an iptables-nft ruleset still parses.
 */
export const NftFamily = z.enum(["ip", "ip6", "inet", "arp", "bridge", "netdev"]);
export type NftFamily = z.infer<typeof NftFamily>;

const NftTable = z.looseObject({ family: NftFamily, name: z.string(), handle: z.number().int() });
const NftChain = z.looseObject({ family: NftFamily, table: z.string(), name: z.string(), handle: z.number().int() });
const NftRule = z.looseObject({
  family: NftFamily,
  table: z.string(),
  chain: z.string(),
  handle: z.number().int().nonnegative(),
  comment: z.string().optional(),
  expr: z.array(z.unknown()).default([]),
});
export type NftRule = z.infer<typeof NftRule>;

const NftListing = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

export interface Ruleset {
  tables: Array<z.infer<typeof NftTable>>;
  chains: Array<z.infer<typeof NftChain>>;
  /** Rules in listing order, which is their evaluation order within a chain. */
  rules: NftRule[];
}

/** Parses `nft -j list ruleset` output; throws NftError naming what did not fit. */
export function parseRuleset(json: string): Ruleset {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new NftError(`parsing nft -j output: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const listing = NftListing.safeParse(raw);
  if (!listing.success) throw new NftError(`parsing nft -j output: expected {"nftables": [...]}`);
  const ruleset: Ruleset = { tables: [], chains: [], rules: [] };
  for (const item of listing.data.nftables) {
    if ("table" in item) ruleset.tables.push(parseItem(NftTable, item.table, "table"));
    else if ("chain" in item) ruleset.chains.push(parseItem(NftChain, item.chain, "chain"));
    else if ("rule" in item) ruleset.rules.push(parseItem(NftRule, item.rule, "rule"));
  }
  return ruleset;
}

function parseItem<S extends z.ZodType>(schema: S, value: unknown, kind: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new NftError(`parsing nft -j output: ${kind} ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

export function hasTable(ruleset: Ruleset, family: NftFamily, table: string): boolean {
  return ruleset.tables.some((t) => t.family === family && t.name === table);
}

export function hasChain(ruleset: Ruleset, family: NftFamily, table: string, chain: string): boolean {
  return ruleset.chains.some((c) => c.family === family && c.table === table && c.name === chain);
}

export function rulesIn(ruleset: Ruleset, family: NftFamily, table: string, chain: string): NftRule[] {
  return ruleset.rules.filter((r) => r.family === family && r.table === table && r.chain === chain);
}
