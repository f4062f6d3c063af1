/**
 * Extracts the commands of a Markdown document for the docs test (tests/docs/docs_commands_test.ts).
 *
 * What counts as a command:
 * - every line of a fenced block tagged `sh`, `bash` or `shell` (a line ending in `\` continues on
 *   the next), except blank and comment lines;
 * - in a `console` block, each line starting with `$ ` (with its continuations); the lines after
 *   it, up to the next `$ `, are its expected stdout;
 * - each inline code span in a table column whose header starts with `command`.
 *
 * A command with placeholders (`[...]`, `<...>`, `...`, `|`, or an all-caps word such as `F` or
 * `FLOW`) is a **synopsis**: not run, but its subcommand and flags are checked against
 * `stepflow <command> --help`.
 *
 * Directives, written `<!-- docs-test: ... -->` on their own line before a fenced block or a
 * table, apply to that block or table:
 * - `skip <reason>`: its commands are not run (the test lists them with the reason);
 * - `needs deno`: its commands run with `deno` on PATH (the text must say so: without it the docs
 *   test runs everything with only Node/npm and the installed `stepflow`);
 * - `stdout`: the next fenced block after this one is the expected stdout of its last command
 *   (compared as JSON when it parses, else as text);
 * - `same-as <path>`: the block must equal that file of the repo;
 * - `file <name>`: the block is written to `<name>` in the document's scratch directory, where its
 *   flow examples run.
 *
 * A **flow example** is a `yaml` block whose first line reads `# <name>.yaml — input <json>`:
 * it runs as `stepflow run --flow <name>.yaml --input-json '<json>'` in the scratch directory,
 * and a `text` block right after it that starts with `{"outcome"` is its expected stdout.
 * A table's `needs` column that mentions `deno` means `needs deno` for that row; one that names
 * a `port N` (a server the command starts on a fixed port) skips that row.
 * @module
 */

/** One command found in a document. */
export interface DocCommand {
  /** The document (repo-relative path) and 1-based line of the command. */
  file: string;
  line: number;
  /** The shell text, as written (continuation lines kept). */
  command: string;
  /** `run`: runnable as written; `synopsis`: has placeholders. */
  kind: "run" | "synopsis";
  /** Why it is not run (a `skip` directive). */
  skip?: string;
  /** Programs the text says must be installed for it (`deno`). */
  needs: string[];
  /** Expected stdout, from a `console` block or a `stdout` directive. */
  expectStdout?: string;
}

/** A block that must equal a file (`same-as`). */
export interface SameAs {
  file: string;
  line: number;
  path: string;
  content: string;
}

/** A file a flow example needs (`file` directive). */
export interface DocFile {
  file: string;
  line: number;
  name: string;
  content: string;
}

/** A flow with its input, written in the document as `# <name> — input <json>`. */
export interface FlowExample {
  file: string;
  line: number;
  name: string;
  input: string;
  flow: string;
  skip?: string;
  expectStdout?: string;
}

/** Everything the docs test checks in one document. */
export interface ExtractedDoc {
  commands: DocCommand[];
  sameAs: SameAs[];
  files: DocFile[];
  flows: FlowExample[];
}

const SHELL_LANGS = new Set(["sh", "bash", "shell"]);
const DIRECTIVE = /^<!--\s*docs-test:\s*(.*?)\s*-->\s*$/;

interface Directives {
  skip?: string;
  needs: string[];
  stdout: boolean;
  sameAs?: string;
  file?: string;
}

function emptyDirectives(): Directives {
  return { needs: [], stdout: false };
}

/** Applies one directive's text to `d`. @throws {Error} for an unknown directive. */
function addDirective(d: Directives, text: string, where: string): void {
  const [word, ...rest] = text.split(/\s+/);
  const arg = rest.join(" ");
  if (word === "skip") {
    if (!arg) throw new Error(`${where}: 'skip' needs a reason`);
    d.skip = arg;
  } else if (word === "needs") d.needs.push(...rest);
  else if (word === "stdout") d.stdout = true;
  else if (word === "same-as") d.sameAs = arg;
  else if (word === "file") d.file = arg;
  else throw new Error(`${where}: unknown docs-test directive '${text}'`);
}

/**
 * True when `command` has placeholders: `[...]`, `<...>`, `...`/`…`, an unquoted `|` inside a
 * word list of alternatives (`text|json`), or an all-caps word (`F`, `FLOW`, `PATH...`).
 */
export function isSynopsis(command: string): boolean {
  const unquoted = command.replace(/'[^']*'/g, "''").replace(/"[^"]*"/g, '""')
    .replace(/(^|\s)#.*$/gm, "");
  if (/\[|<|\.\.\.|…/.test(unquoted)) return true;
  if (/\w\|\w/.test(unquoted)) return true;
  return unquoted.split(/\s+/).some((w) => /^[A-Z][A-Z_]*$/.test(w));
}

/** Inline code spans of a Markdown line (backslash-escaped pipes unescaped). */
export function codeSpans(text: string): string[] {
  return [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1].replaceAll("\\|", "|"));
}

/** Splits a table row into cells (escaped pipes stay in their cell). */
function cells(row: string): string[] {
  return row.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((c) => c.trim());
}

const PROGRAMS = /^(npx|deno|stepflow|bash|python3|node|npm|curl)\b/;

/** Extracts commands and `same-as` blocks from the Markdown `text` of `file`. */
export function extractDoc(file: string, text: string): ExtractedDoc {
  const lines = text.split("\n");
  const commands: DocCommand[] = [];
  const sameAs: SameAs[] = [];
  const files: DocFile[] = [];
  const flows: FlowExample[] = [];
  let lastFlow: FlowExample | undefined;
  let pending = emptyDirectives();
  /** Set by a `stdout` directive: the command whose output the next fenced block shows. */
  let awaitingStdout: DocCommand | undefined;

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const directive = DIRECTIVE.exec(line.trim());
    if (directive) {
      addDirective(pending, directive[1], `${file}:${i + 1}`);
      continue;
    }
    const fence = /^(\s*)```(\S*)\s*$/.exec(line);
    if (fence) {
      const lang = fence[2];
      const start = i + 1;
      const body: string[] = [];
      for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i]);
      const dedent = fence[1].length;
      const block = body.map((l) => l.slice(Math.min(dedent, l.length - l.trimStart().length)));
      if (awaitingStdout && !SHELL_LANGS.has(lang) && lang !== "console") {
        awaitingStdout.expectStdout = block.join("\n");
        awaitingStdout = undefined;
      }
      if (lastFlow && lang === "text" && block[0]?.startsWith('{"outcome"')) {
        lastFlow.expectStdout = block.join("\n");
      }
      lastFlow = undefined;
      const example = /^# (\S+\.ya?ml) — input (\{.*?\}|\[.*?\]|".*?")(;.*)?$/.exec(block[0] ?? "");
      if (lang === "yaml" && example) {
        lastFlow = {
          file,
          line: start + 1,
          name: example[1],
          input: example[2],
          flow: block.join("\n") + "\n",
          skip: pending.skip,
        };
        flows.push(lastFlow);
      }
      if (pending.file) {
        files.push({ file, line: start, name: pending.file, content: block.join("\n") + "\n" });
      }
      if (pending.sameAs) {
        sameAs.push({ file, line: start, path: pending.sameAs, content: block.join("\n") });
      }
      let found: DocCommand[] = [];
      if (SHELL_LANGS.has(lang)) found = shellCommands(file, start, block, pending);
      else if (lang === "console") found = consoleCommands(file, start, block, pending);
      commands.push(...found);
      if (pending.stdout) {
        if (found.length === 0) throw new Error(`${file}:${start}: 'stdout' before a non-command`);
        awaitingStdout = found.at(-1);
      }
      pending = emptyDirectives();
      continue;
    }
    if (/^\s*\|/.test(line) && i + 1 < lines.length && /^\s*\|[\s:|-]+\|\s*$/.test(lines[i + 1])) {
      const header = cells(line).map((c) => c.toLowerCase());
      const commandCol = header.findIndex((h) => h.startsWith("command"));
      const needsCol = header.findIndex((h) => h.startsWith("needs"));
      for (i += 2; i < lines.length && /^\s*\|/.test(lines[i]); i++) {
        if (commandCol === -1) continue;
        const row = cells(lines[i]);
        const needs = [...pending.needs];
        if (needsCol !== -1 && /\bdeno\b/.test(row[needsCol] ?? "")) needs.push("deno");
        // a row that needs a server on a fixed port is not run (it would leave it running)
        const server = needsCol !== -1 && /\bport \d+/.test(row[needsCol] ?? "")
          ? `needs ${row[needsCol].replace(/`/g, "")}`
          : undefined;
        for (const span of codeSpans(row[commandCol] ?? "")) {
          if (!PROGRAMS.test(span)) continue;
          commands.push({
            file,
            line: i + 1,
            command: span,
            kind: isSynopsis(span) ? "synopsis" : "run",
            skip: pending.skip ?? server,
            needs,
          });
        }
      }
      i--;
      pending = emptyDirectives();
      continue;
    }
  }
  return { commands, sameAs, files, flows };
}

function shellCommands(file: string, start: number, block: string[], d: Directives): DocCommand[] {
  const out: DocCommand[] = [];
  for (let j = 0; j < block.length; j++) {
    const first = j;
    let text = block[j];
    while (/\\\s*$/.test(block[j]) && j + 1 < block.length) text += "\n" + block[++j];
    const trimmed = text.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const previous = out.at(-1);
    if (/^\s/.test(text) && previous?.kind === "synopsis") {
      // a synopsis wrapped onto an indented line
      previous.command += " " + trimmed;
      continue;
    }
    out.push({
      file,
      line: start + first + 1,
      command: trimmed,
      kind: isSynopsis(trimmed) ? "synopsis" : "run",
      skip: d.skip,
      needs: [...d.needs],
    });
  }
  return out;
}

function consoleCommands(
  file: string,
  start: number,
  block: string[],
  d: Directives,
): DocCommand[] {
  const out: DocCommand[] = [];
  for (let j = 0; j < block.length; j++) {
    if (!block[j].startsWith("$ ")) continue;
    const first = j;
    let text = block[j].slice(2);
    while (/\\\s*$/.test(block[j]) && j + 1 < block.length) text += "\n" + block[++j];
    const output: string[] = [];
    while (j + 1 < block.length && !block[j + 1].startsWith("$ ")) output.push(block[++j]);
    const cmd: DocCommand = {
      file,
      line: start + first + 1,
      command: text.trim(),
      kind: isSynopsis(text) ? "synopsis" : "run",
      skip: d.skip,
      needs: [...d.needs],
    };
    const expected = output.join("\n").trim();
    if (expected !== "") cmd.expectStdout = expected;
    out.push(cmd);
  }
  return out;
}
