import { describe, expect, it } from "vitest";
import { ArgsError, parseFlags } from "../src/args.js";

const spec = { strings: ["max-tokens", "model"], booleans: ["json"] };

describe("parseFlags", () => {
  it("reads values, booleans and positionals", () => {
    const { flags, positionals } = parseFlags(["--max-tokens", "5", "--json", "--model=m", "hi", "there"], spec);
    expect(Object.fromEntries(flags)).toEqual({ "max-tokens": "5", json: "true", model: "m" });
    expect(positionals).toEqual(["hi", "there"]);
  });

  it("refuses a misspelt flag, naming it and the closest known one", () => {
    expect(() => parseFlags(["--max-token", "5", "hi"], spec)).toThrow(ArgsError);
    expect(() => parseFlags(["--max-token", "5", "hi"], spec)).toThrow(
      /unknown flag --max-token \(did you mean --max-tokens\?\)/,
    );
  });

  it("names a single-dash word as typed and points at --", () => {
    expect(() => parseFlags(["ip", "-4", "address"], spec)).toThrow(
      /unknown flag -4; known flags: .*a word that starts with - goes after --/,
    );
  });

  it("hints a swapped pair of letters, and no unrelated short flag", () => {
    expect(() => parseFlags(["--modle", "m"], spec)).toThrow(/did you mean --model\?/);
    expect(() => parseFlags(["--on", "x"], spec)).toThrow(/^unknown flag --on; known flags/);
  });

  it("does not let a boolean swallow the next word", () => {
    expect(parseFlags(["--json", "hi"], spec).positionals).toEqual(["hi"]);
  });

  it("says when a value is missing", () => {
    expect(() => parseFlags(["--model"], spec)).toThrow(/--model needs a value/);
  });

  it("refuses positionals where none are allowed", () => {
    expect(() => parseFlags(["stray"], { ...spec, positionals: false })).toThrow(/unexpected argument stray/);
  });

  it("keeps everything after -- as positionals", () => {
    expect(parseFlags(["--", "--json"], spec).positionals).toEqual(["--json"]);
  });
});
