/**
 * node-llama-cpp's grammar compiler turns any JSON-schema keyword it does not know into "anything
 * goes" without a word, so a `pattern` or a `minimum` would be silently unenforced and "strict"
 * output would not be. Schemas are checked here first: keywords the grammar enforces pass,
 * annotations pass, `anyOf` becomes `oneOf` (the same set of outputs for a grammar), and anything
 * else is refused naming its path.
 */
const enforced = new Set([
  "type",
  "const",
  "enum",
  "oneOf",
  "properties",
  "additionalProperties",
  "required",
  "minProperties",
  "maxProperties",
  "items",
  "prefixItems",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "format",
  "$defs",
  "$ref",
]);
/** Keywords that describe and constrain nothing: they change no output. */
const annotations = new Set([
  "title",
  "description",
  "default",
  "examples",
  "$schema",
  "$id",
  "$comment",
  "deprecated",
  "readOnly",
  "writeOnly",
  // OpenAI's strict mode asks for it on every object; the grammar's objects obey it anyway.
  "strict",
]);
const types = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
const formats = new Set(["date-time", "time", "date"]);

export function enforceableSchema(schema: unknown, path = "schema"): unknown {
  if (typeof schema === "boolean") return schema ? {} : fail(path, "false admits nothing");
  if (typeof schema !== "object" || schema === null || Array.isArray(schema))
    return fail(path, "a schema must be an object");
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    const at = `${path}.${key}`;
    if (annotations.has(key)) {
      if (key === "description") out[key] = value;
      continue;
    }
    const name = key === "anyOf" ? "oneOf" : key;
    if (!enforced.has(name)) return fail(at, "this keyword is not enforced by the runtime's grammar");
    out[name] = checkKeyword(name, value, at);
  }
  return out;
}

function checkKeyword(key: string, value: unknown, at: string): unknown {
  switch (key) {
    case "type": {
      const list = Array.isArray(value) ? value : [value];
      if (list.length === 0 || !list.every((t) => typeof t === "string" && types.has(t)))
        return fail(at, `one of ${[...types].join(", ")} (or a list of them)`);
      return value;
    }
    case "format":
      return typeof value === "string" && formats.has(value) ? value : fail(at, "only date-time, time and date");
    case "oneOf":
    case "prefixItems":
      if (!Array.isArray(value) || value.length === 0) return fail(at, "a non-empty list of schemas");
      return value.map((s, i) => enforceableSchema(s, `${at}.${i}`));
    case "properties":
    case "$defs":
      if (typeof value !== "object" || value === null || Array.isArray(value)) return fail(at, "an object of schemas");
      return Object.fromEntries(Object.entries(value).map(([k, s]) => [k, enforceableSchema(s, `${at}.${k}`)]));
    case "items":
      return enforceableSchema(value, at);
    case "additionalProperties":
      return typeof value === "boolean" ? value : enforceableSchema(value, at);
    default:
      // const, enum, required, the counts and $ref: values the compiler reads as they are.
      return value;
  }
}

function fail(path: string, message: string): never {
  throw new SchemaError(path, `${path}: ${message}`);
}

/** `path`: the offending keyword, from the root the caller named (a request field, or "schema"). */
export class SchemaError extends Error {
  override name = "SchemaError";
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}
