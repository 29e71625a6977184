import type { z } from "zod";
import { check, type Checked } from "./validation.js";

type Predicate = (value: unknown) => boolean;

/**
 * A check for a flat object schema (fields that are strings with regex/length checks, numbers
 * with integer/bound checks, or enums) that gives the same verdict and the same data as zod at a
 * fraction of its per-call cost: hot paths (the ledger ingests every usage event through here)
 * spent more time in zod than in everything else they do with an event.
 *
 * The predicates are built from the schema's own definition (its regexes, bounds, enum values),
 * so they cannot drift from it. A field using anything not listed here makes the whole schema
 * go to zod every time, and any input the fast path does not accept is handed to zod too, which
 * decides it and writes the error: the fast path only ever says yes where zod says yes.
 */
export function flatCheck<S extends z.ZodObject>(schema: S): FlatCheck<z.infer<S>> {
  const fields = compileFields(schema);
  if (fields === undefined) return Object.assign((input: unknown) => check(schema, input), { fast: false });
  const keys = fields.map(([k]) => k);
  const tests = fields.map(([, t]) => t);
  const run = (input: unknown): Checked<z.infer<S>> => {
    if (typeof input !== "object" || input === null || Array.isArray(input)) return check(schema, input);
    const obj = input as Record<string, unknown>;
    // Like zod's default (strip), keys the schema does not name are left out of the data.
    const data: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i += 1) {
      const k = keys[i] as string;
      const v = obj[k];
      if (!(tests[i] as Predicate)(v)) return check(schema, input);
      // An optional field left out is left out of the data; one present as undefined stays (zod's `key in input`).
      if (v !== undefined || k in obj) data[k] = v;
    }
    return { ok: true, data: data as z.infer<S> };
  };
  return Object.assign(run, { fast: true });
}

/** A compiled check; `fast` says whether the schema got the fast path or goes to zod every time. */
export type FlatCheck<T> = ((input: unknown) => Checked<T>) & { readonly fast: boolean };

/** The field predicates, or undefined when the schema uses anything this does not reproduce exactly. */
function compileFields(schema: z.ZodObject): [string, Predicate][] | undefined {
  const def = schema._zod.def as unknown as { catchall?: unknown; shape: Record<string, z.ZodType> };
  if (def.catchall !== undefined) return undefined;
  const out: [string, Predicate][] = [];
  for (const [key, field] of Object.entries(def.shape)) {
    const test = compileField(field);
    if (test === undefined) return undefined;
    out.push([key, test]);
  }
  return out;
}

interface CheckDef {
  check?: string;
  format?: string;
  pattern?: RegExp;
  minimum?: number;
  maximum?: number;
  value?: number;
  inclusive?: boolean;
}

function compileField(field: z.ZodType): Predicate | undefined {
  const outer = field._zod.def as unknown as { type: string; innerType?: z.ZodType };
  if (outer.type === "optional" && outer.innerType !== undefined) {
    const inner = compileField(outer.innerType);
    return inner === undefined ? undefined : (v) => v === undefined || inner(v);
  }
  const def = field._zod.def as unknown as CheckDef & {
    type: string;
    checks?: { _zod: { def: CheckDef } }[];
    entries?: Record<string, unknown>;
  };
  // A string format schema (z.iso.datetime(), …) carries its own check in its definition.
  const checks = [...(def.check === undefined ? [] : [def]), ...(def.checks ?? []).map((c) => c._zod.def)];
  if (def.type === "enum") {
    if (checks.length > 0 || def.entries === undefined) return undefined;
    const values = new Set(Object.values(def.entries));
    return (v) => values.has(v);
  }
  if (def.type === "string") {
    const parts: Predicate[] = [];
    for (const c of checks) {
      if (
        c.check === "string_format" &&
        (c.format === "regex" || c.format === "datetime") &&
        c.pattern instanceof RegExp &&
        !c.pattern.global &&
        !c.pattern.sticky
      ) {
        const pattern = c.pattern;
        parts.push((v) => pattern.test(v as string));
      } else if (c.check === "min_length" && typeof c.minimum === "number") {
        const min = c.minimum;
        parts.push((v) => (v as string).length >= min);
      } else if (c.check === "max_length" && typeof c.maximum === "number") {
        const max = c.maximum;
        parts.push((v) => (v as string).length <= max);
      } else return undefined;
    }
    return (v) => typeof v === "string" && all(parts, v);
  }
  if (def.type === "number") {
    const parts: Predicate[] = [];
    for (const c of checks) {
      if (c.check === "number_format" && c.format === "safeint") parts.push((v) => Number.isSafeInteger(v));
      else if ((c.check === "greater_than" || c.check === "less_than") && typeof c.value === "number") {
        const bound = c.value;
        const inclusive = c.inclusive === true;
        if (c.check === "greater_than")
          parts.push(inclusive ? (v) => (v as number) >= bound : (v) => (v as number) > bound);
        else parts.push(inclusive ? (v) => (v as number) <= bound : (v) => (v as number) < bound);
      } else return undefined;
    }
    return (v) => typeof v === "number" && Number.isFinite(v) && all(parts, v);
  }
  return undefined;
}

/** parts.every((p) => p(v)) without a closure per call (this runs for every field of every event). */
function all(parts: readonly Predicate[], v: unknown): boolean {
  for (const p of parts) if (!p(v)) return false;
  return true;
}
