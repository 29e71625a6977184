import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../lib/repo.js";
import { CliError, parseCommandFlags, unknownChoice, type Command, type FlagSpec } from "./command.js";
import { upCommand } from "./commands/up.js";
import { memoryCommand } from "./commands/memory.js";
import { modelCommand } from "./commands/model.js";
import { modelsCommand } from "./commands/models.js";
import { askCommand } from "./commands/ask.js";
import { labCommand } from "./commands/lab.js";
import { doctorCommand } from "./commands/doctor.js";
import { joinCommand } from "./commands/join.js";
import { peersCommand } from "./commands/peers.js";
import { tokenCommand } from "./commands/token.js";
import { ledgerCommand } from "./commands/ledger.js";
import { mcpCommand } from "./commands/mcp.js";
import { serviceCommand } from "./commands/service.js";

/** Every subcommand; later issues add theirs here (doctor, join, ask, memory, ledger, lab…). */
const commands: Command[] = [
  upCommand,
  modelCommand,
  modelsCommand,
  askCommand,
  labCommand,
  memoryCommand,
  doctorCommand,
  tokenCommand,
  joinCommand,
  peersCommand,
  ledgerCommand,
  mcpCommand,
  serviceCommand,
];

const usage = `potluck: your own machines as one private AI system

Usage: potluck COMMAND [options]   (potluck COMMAND --help for details)
       potluck --version

Commands:
${commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (command === undefined)
    throw unknownChoice(
      "command",
      name,
      commands.map((c) => c.name),
      "potluck --help",
    );
  // Only before "--": what follows belongs to another program (`potluck lab exec HOST -- cmd --help`).
  const own = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (own.includes("--help") || own.includes("-h")) {
    process.stdout.write(command.usage.endsWith("\n") ? command.usage : `${command.usage}\n`);
    return 0;
  }
  return command.run(rest, parseCommandFlags(rest, command.flags));
}

/** The version in the repository's package.json: what this checkout is, with no build step to stamp it. */
function version(): string {
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version?: unknown };
  if (typeof manifest.version !== "string") throw new Error("package.json has no version");
  return manifest.version;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof CliError) {
      process.stderr.write(`potluck: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`potluck: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
