import type { Plan, Step } from "./plan.js";

/**
 * A plan as text a user can follow by hand: a POSIX shell script on Linux and macOS (files as
 * here-documents, `$UTUN` a shell variable), numbered steps for Windows' command prompt. Private
 * keys never appear: a file's key line reads it from the key file instead.
 */
export function formatPlan(plan: Plan): string {
  const lines = [
    `# potluck join --dry-run: mesh backend "${plan.backend}"; nothing below was run or written.`,
    ...plan.notes.map((n) => `# ${n}`),
  ];
  plan.steps.forEach((step, i) => {
    lines.push("", `# ${i + 1}. ${step.why}`);
    lines.push(...(plan.shell === "sh" ? shLines(step) : cmdLines(step)));
  });
  return `${lines.join("\n")}\n`;
}

function shLines(step: Step): string[] {
  switch (step.kind) {
    case "run": {
      const line = shJoin(step.argv);
      if (step.orElse !== undefined) return [`${line} || ${shJoin(step.orElse)}`];
      return [step.mayFail === true ? `${line} || true` : line];
    }
    case "wait":
      return [`until ${shJoin(step.argv)} >/dev/null 2>&1; do sleep 0.1; done`];
    case "read":
      return [`${step.variable}="$(cat ${shQuote(step.path)})"`];
    case "write": {
      // Unquoted here-document: `$(cat KEYFILE)` is expanded, nothing else in a config has a `$`.
      const content = withoutKey(step, (from) => `$(cat ${shQuote(from)})`);
      return [
        `(umask ${(0o777 & ~step.mode).toString(8).padStart(3, "0")} && cat > ${shQuote(step.path)} <<EOF`,
        ...content.replace(/\n$/, "").split("\n"),
        "EOF",
        ")",
      ];
    }
  }
}

function cmdLines(step: Step): string[] {
  switch (step.kind) {
    case "run": {
      const line = cmdJoin(step.argv);
      if (step.orElse !== undefined) return [`${line} || ${cmdJoin(step.orElse)}`];
      return [step.mayFail === true ? `${line}   (an error here is expected if it is not installed yet)` : line];
    }
    case "wait":
      return [`repeat until it succeeds: ${cmdJoin(step.argv)}`];
    case "read":
      return [`set ${step.variable} from the contents of ${step.path}`];
    case "write": {
      const content = withoutKey(step, (from) => `<the contents of ${from}>`);
      return [
        `save as ${step.path} (readable only by you):`,
        ...content
          .replace(/\n$/, "")
          .split("\n")
          .map((l) => `    ${l}`),
      ];
    }
  }
}

/** A file's content with its private key replaced by what reads it from `from`, the key file. */
export function withoutKey(step: Extract<Step, { kind: "write" }>, reader: (from: string) => string): string {
  const { secret } = step;
  return secret === undefined ? step.content : step.content.replace(secret.key, () => reader(secret.from));
}

/** Quotes only what a POSIX shell would split or expand; `$VAR` stays a variable, in double quotes. */
function shQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(arg)) return `"${arg}"`;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

function shJoin(argv: readonly string[]): string {
  return argv.map(shQuote).join(" ");
}

/** cmd.exe: double quotes around anything with a space (Program Files). */
function cmdJoin(argv: readonly string[]): string {
  return argv.map((a) => (/[\s&^|<>]/.test(a) ? `"${a}"` : a)).join(" ");
}
