import fc from "fast-check";
import { Hono } from "hono";
import { validator } from "hono/validator";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { check, ErrorBody, toErrorResponse, zodHook } from "../src/index.js";
import { samples } from "./samples.js";

// A value of a different JSON type than `value`, so replacing a field with it must fail.
function wrongType(value: unknown): fc.Arbitrary<unknown> {
  if (typeof value === "string")
    return fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }));
  if (typeof value === "number")
    return fc.oneof(
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.dictionary(fc.string(), fc.integer(), { maxKeys: 2 }),
    );
  if (typeof value === "boolean") return fc.oneof(fc.string(), fc.integer(), fc.constant(null));
  if (Array.isArray(value)) return fc.oneof(fc.string(), fc.integer(), fc.constant(null));
  return fc.oneof(fc.string(), fc.integer(), fc.boolean());
}

describe.each(samples)("$name", ({ schema, valid }) => {
  it("accepts its valid sample", () => {
    expect(check(schema, valid).ok).toBe(true);
  });

  it("never throws on arbitrary input, and names a field when it rejects", () => {
    fc.assert(
      fc.property(
        fc.anything({
          withObjectString: true,
          withNullPrototype: true,
          withBigInt: true,
          withDate: true,
          withMap: true,
        }),
        (input) => {
          const result = check(schema, input);
          if (!result.ok) {
            expect(result.status).toBe(400);
            expect(ErrorBody.safeParse(result.body).success).toBe(true);
            expect(result.body.error.field).toEqual(expect.any(String));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects a required field given the wrong type, naming that field", () => {
    const fields = Object.keys(valid);
    fc.assert(
      fc.property(
        fc.constantFrom(...fields).chain((field) => fc.tuple(fc.constant(field), wrongType(valid[field]))),
        ([field, bad]) => {
          // Some fields legitimately take several types (a string or a list, a value or null).
          const fieldSchema = (schema as unknown as { shape?: Record<string, z.ZodType> }).shape?.[field];
          fc.pre(fieldSchema === undefined || !fieldSchema.safeParse(bad).success);
          const result = check(schema, { ...valid, [field]: bad });
          expect(result.ok).toBe(false);
          if (!result.ok) expect(result.body.error.field?.split(".")[0]).toBe(field);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("zodHook in a Hono app", () => {
  const [sample] = samples;
  if (sample === undefined) throw new Error("no samples");
  const app = new Hono()
    .post("/x", validator("json", zodHook(sample.schema)), (c) => c.json({ ok: true }))
    .onError((err, c) => {
      const { status, body } = toErrorResponse(err);
      return c.json(body, status as 400);
    });

  it("answers random JSON bodies with 200 or a named 400, never 500", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const res = await app.request("/x", {
          method: "POST",
          body: JSON.stringify(value),
          headers: { "content-type": "application/json" },
        });
        expect([200, 400]).toContain(res.status);
        if (res.status === 400) expect(ErrorBody.parse(await res.json()).error.field).toEqual(expect.any(String));
      }),
      { numRuns: 200 },
    );
  });

  it("answers malformed JSON with a 400 in the shared shape", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string().filter((s) => {
          try {
            JSON.parse(s);
            return false;
          } catch {
            return true;
          }
        }),
        async (text) => {
          const res = await app.request("/x", {
            method: "POST",
            body: text,
            headers: { "content-type": "application/json" },
          });
          expect(res.status).toBe(400);
          expect(ErrorBody.parse(await res.json()).error.code).toBe("malformed_json");
        },
      ),
      { numRuns: 100 },
    );
  });
});
