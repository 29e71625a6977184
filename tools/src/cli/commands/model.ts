import { resolve } from "node:path";
import { CliError, type Command } from "../command.js";
import { TINY_MODEL_NAME, writeTinyModel } from "../../model/tiny.js";

const usage = `Usage: potluck model tiny --out FILE [--seed N]

Writes ${TINY_MODEL_NAME}: a tiny llama-architecture GGUF with RANDOM weights, identical for
the same seed (default 1). It is a TEST MODEL: node-llama-cpp loads it, generates and embeds with
it, and its output is gibberish. Potluck labels it as a test model wherever it appears.`;

export const modelCommand: Command = {
  name: "model",
  summary: "model files: `model tiny` writes the tiny random-weight TEST model",
  usage,
  flags: { strings: ["out", "seed"] },
  async run(_argv, { flags, positionals }) {
    if (positionals[0] !== "tiny")
      throw new CliError(`expected "potluck model tiny --out FILE"; see potluck model --help`, 2);
    const out = flags.get("out");
    if (out === undefined) throw new CliError("--out FILE is required", 2);
    const seedText = flags.get("seed") ?? "1";
    if (!/^\d{1,10}$/.test(seedText) || Number(seedText) > 0xffffffff)
      throw new CliError(`--seed: expected an integer 0-4294967295, got ${JSON.stringify(seedText)}`, 2);
    const path = resolve(out);
    const bytes = writeTinyModel(path, Number(seedText));
    process.stdout.write(
      `wrote ${path} (${bytes} bytes): ${TINY_MODEL_NAME}, seed ${seedText} — a TEST MODEL with random weights\n`,
    );
    return 0;
  },
};
