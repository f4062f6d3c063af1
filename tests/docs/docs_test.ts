/**
 * The documented commands work as written (issue 9): every command of README.md, docs/*.md and
 * examples/*\/README.md (fenced `sh`/`console` blocks and the `command` column of tables, see
 * `_extract.ts`) runs on a copy of the checkout, as a user with only Node/npm would run it:
 *
 * - the copy is outside the repo, so `../shared` does not exist beside it;
 * - PATH has no `deno` (directories holding one are left out); `npx --yes deno@2.9.6 ...` fetches
 *   it as for a user; a block marked `<!-- docs-test: needs deno -->` (whose text says to install
 *   Deno) gets a `deno` on PATH, as `npm install -g deno@2.9.6` gives;
 * - HOME is a fresh directory, so `npx --yes deno@2.9.6 task install` installs `stepflow` there,
 *   and `export PATH=...` lines take effect for the commands after them;
 * - the Deno and npm caches are the machine's (to keep the test fast; `$HOME/.cache/deno` links
 *   to the Deno cache for step services, which get only HOME): the empty-cache timings are
 *   measured by hand and written in the README; the rest of the environment is inherited.
 *
 * Flow examples (`# <name>.yaml — input <json>` blocks) run with `stepflow run` in a scratch
 * directory holding the document's `file` blocks, and must print the `text` block after them.
 *
 * Each command must exit 0; a `console` block's output lines, or the block after a
 * `<!-- docs-test: stdout -->` command, must equal its stdout (as JSON when it parses). A
 * synopsis (`stepflow run --flow F [--config C]`) is not run: its subcommand and each of its flags
 * must be in that subcommand's `--help`. `same-as` blocks must equal their files. Commands marked
 * `skip`, and those that would run this test suite itself, are listed as ignored with the reason.
 * An identical command already run (in the same environment) is not run again: its result is
 * reused.
 *
 * The README's library snippet runs from a temporary directory with `dist/mod.js` copied next to
 * it (no `deno.json`, no `--config`).
 * @module
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
} from "../_assert.ts";
import { codeSpans, type DocCommand, extractDoc, isSynopsis } from "./_extract.ts";
import { canonicalJson, parseJson } from "../../src/json/exact_json.ts";

const dec = new TextDecoder();

/** The documents whose commands are checked, in the order they run (README first: it installs). */
async function documents(): Promise<string[]> {
  const docs: string[] = [];
  for await (const e of Deno.readDir(`${REPO_ROOT}/docs`)) {
    if (e.isFile && e.name.endsWith(".md")) docs.push(`docs/${e.name}`);
  }
  const examples: string[] = [];
  for await (const e of Deno.readDir(`${REPO_ROOT}/examples`)) {
    if (!e.isDirectory) continue;
    try {
      await Deno.stat(`${REPO_ROOT}/examples/${e.name}/README.md`);
      examples.push(`examples/${e.name}/README.md`);
    } catch {
      // an example without a README has no commands
    }
  }
  return ["README.md", ...docs.sort(), ...examples.sort()];
}

interface Sandbox {
  /** The checkout copy (cwd of the commands). */
  repo: string;
  /** Environment of the commands (PATH without deno). */
  env: Record<string, string>;
  /** A directory holding only a `deno` symlink, for `needs deno`. */
  denoBin: string;
  root: string;
}

let sandbox: Promise<Sandbox> | undefined;

/** Copies the checkout (tracked and untracked, not ignored, files) to a temp dir; builds the env. */
function getSandbox(): Promise<Sandbox> {
  return sandbox ??= (async () => {
    const root = await Deno.makeTempDir({ prefix: "stepflow-docs-" });
    // removed when the test process ends, whichever tests ran
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(root, { recursive: true });
      } catch {
        // already removed
      }
    });
    const repo = `${root}/stepflow`;
    for (const f of await checkoutFiles()) {
      const to = `${repo}/${f}`;
      await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
      try {
        await Deno.copyFile(`${REPO_ROOT}/${f}`, to);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e; // deleted in the working tree
      }
    }
    // the MCP servers `deno task test` installed (scripts/setup_mcp_servers.sh finds them)
    try {
      await Deno.stat(`${REPO_ROOT}/.cache`);
      await Deno.symlink(`${REPO_ROOT}/.cache`, `${repo}/.cache`);
    } catch {
      // none: the setup script installs them from npm
    }
    const home = `${root}/home`;
    await Deno.mkdir(home);
    const denoBin = `${root}/deno-bin`;
    await Deno.mkdir(denoBin);
    await Deno.symlink(Deno.execPath(), `${denoBin}/deno`);
    const info = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdout: "piped",
    }).output();
    const denoDir = JSON.parse(dec.decode(info.stdout)).denoDir as string;
    // step services get only their config's `env` (HOME): they find the Deno cache under it
    await Deno.mkdir(`${home}/.cache`);
    await Deno.symlink(denoDir, `${home}/.cache/deno`);
    const env: Record<string, string> = { ...Deno.env.toObject() };
    for (const k of ["DENO_INSTALL_ROOT", "STEPFLOW_REQUIRE_CONFORMANCE"]) delete env[k];
    Object.assign(env, {
      HOME: home,
      PATH: await pathWithoutDeno(env.PATH ?? "/usr/bin:/bin", `${root}/path`),
      DENO_DIR: denoDir,
      npm_config_cache: env.npm_config_cache ?? `${Deno.env.get("HOME") ?? home}/.npm`,
      npm_config_update_notifier: "false",
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
    });
    return { repo, env, denoBin, root };
  })();
}

/**
 * `path` without `deno`: a directory that holds one is replaced by a directory (under `shadows`)
 * of links to everything else in it, so `node` and `npx` beside a `deno` stay on PATH.
 */
async function pathWithoutDeno(path: string, shadows: string): Promise<string> {
  const out: string[] = [];
  let n = 0;
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    try {
      await Deno.stat(`${dir}/deno`);
    } catch {
      out.push(dir);
      continue;
    }
    const shadow = `${shadows}/${n++}`;
    await Deno.mkdir(shadow, { recursive: true });
    for await (const e of Deno.readDir(dir)) {
      if (e.name !== "deno") await Deno.symlink(`${dir}/${e.name}`, `${shadow}/${e.name}`);
    }
    out.push(shadow);
  }
  return out.join(":");
}

/**
 * The files of the checkout as a clone would have them: tracked and untracked files that git does
 * not ignore; without git, every file but `.git`, `dist`, `.cache` and `node_modules`.
 */
async function checkoutFiles(): Promise<string[]> {
  try {
    const ls = await new Deno.Command("git", {
      args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "null",
    }).output();
    if (ls.success) return dec.decode(ls.stdout).split("\0").filter((f) => f !== "");
  } catch {
    // no git
  }
  const out: string[] = [];
  async function walk(rel: string) {
    for await (const e of Deno.readDir(`${REPO_ROOT}/${rel}`)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        if (![".git", "dist", ".cache", "node_modules"].includes(e.name)) await walk(p);
      } else if (e.isFile) out.push(p);
    }
  }
  await walk("");
  return out;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` with bash in the sandbox. */
async function sh(
  box: Sandbox,
  command: string,
  options: { needs?: string[]; cwd?: string; env?: Record<string, string> } = {},
): Promise<Result> {
  const env = { ...box.env, ...options.env };
  if (options.needs?.includes("deno")) env.PATH = `${box.denoBin}:${env.PATH}`;
  const out = await new Deno.Command("/bin/bash", {
    args: ["-o", "pipefail", "-c", command],
    cwd: options.cwd ?? box.repo,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const helpCache = new Map<string, Promise<string>>();

/** `stepflow <sub> --help` of this checkout's sources (`sub` may be `runs list`). */
function helpOf(sub: string): Promise<string> {
  let h = helpCache.get(sub);
  if (!h) {
    h = (async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${REPO_ROOT}/main.ts`, ...sub.split(" "), "--help"],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return dec.decode(out.stdout) + dec.decode(out.stderr);
    })();
    helpCache.set(sub, h);
  }
  return h;
}

/** Checks a `stepflow` synopsis: its subcommand exists and each flag is in its help. */
async function checkSynopsis(cmd: DocCommand): Promise<void> {
  const words = cmd.command.replace(/^npx --yes deno@\S+ task /, "").split(/\s+/);
  if (words[0] !== "stepflow") return; // only our own commands have a help to check against
  // `stepflow runs list ...`: the flags are in the help of `runs list`
  const sub = /^[a-z][a-z-]*$/.test(words[2] ?? "") ? `${words[1]} ${words[2]}` : words[1];
  const help = await helpOf(sub);
  assert(!/unknown command/i.test(help), `${cmd.file}:${cmd.line}: no subcommand '${sub}'`);
  for (const flag of cmd.command.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)) {
    assertStringIncludes(help, flag[0], `${cmd.file}:${cmd.line}: '${sub}' has no ${flag[0]}`);
  }
}

/** Equal as exact JSON when both parse, else as trimmed text. */
function sameOutput(actual: string, expected: string): boolean {
  try {
    return canonicalJson(parseJson(actual.trim())) === canonicalJson(parseJson(expected.trim()));
  } catch {
    return actual.trim() === expected.trim();
  }
}

/** Why a command is not run, or undefined. */
function skipReason(cmd: DocCommand): string | undefined {
  if (cmd.skip) return cmd.skip;
  if (/\b(task test|deno test)\b/.test(cmd.command)) return "runs this test suite itself";
  return undefined;
}

/** `command` without a trailing `# comment` (outside quotes). */
function withoutComment(command: string): string {
  let quote = "";
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(command[i - 1]))) return command.slice(0, i).trim();
  }
  return command.trim();
}

function short(text: string, n = 3000): string {
  return text.length > n ? "…" + text.slice(-n) : text;
}

Deno.test("docs: blocks marked same-as equal their files", async () => {
  let n = 0;
  for (const doc of await documents()) {
    const { sameAs } = extractDoc(doc, await Deno.readTextFile(`${REPO_ROOT}/${doc}`));
    for (const s of sameAs) {
      const file = await Deno.readTextFile(`${REPO_ROOT}/${s.path}`);
      assertStrictEquals(
        s.content.trimEnd(),
        file.trimEnd(),
        `${s.file}:${s.line} differs from ${s.path}`,
      );
      n++;
    }
  }
  assert(n >= 2, "the README quick reference shows examples/greet");
});

Deno.test("docs: the extractor finds commands, synopses, outputs and directives", () => {
  const md = [
    "<!-- docs-test: needs deno -->",
    "",
    "```sh",
    "deno task a   # comment",
    "stepflow run --flow x.yaml \\",
    "  --input-json '{}'",
    "```",
    "",
    "```console",
    "$ stepflow --version",
    "0.1.0",
    "```",
    "",
    "| example | needs | command |",
    "| --- | --- | --- |",
    "| a | `deno` on PATH | `stepflow run --flow a.yaml` |",
    "| b | nothing | `stepflow validate --flow F [--format text\\|json]` |",
  ].join("\n");
  const { commands } = extractDoc("x.md", md);
  assertEquals(
    commands.map((c) => [c.line, c.kind, c.needs, c.expectStdout ?? null, c.command]),
    [
      [4, "run", ["deno"], null, "deno task a   # comment"],
      [5, "run", ["deno"], null, "stepflow run --flow x.yaml \\\n  --input-json '{}'"],
      [10, "run", [], "0.1.0", "stepflow --version"],
      [16, "run", ["deno"], null, "stepflow run --flow a.yaml"],
      [17, "synopsis", [], null, "stepflow validate --flow F [--format text|json]"],
    ],
  );
  const ex = extractDoc(
    "f.md",
    [
      "<!-- docs-test: file stepflow-config.yml -->",
      "```yaml",
      "plugins: {}",
      "```",
      "```yaml",
      '# a.yaml — input {"x":1}',
      "steps: []",
      "```",
      "```text",
      '{"outcome":"success","result":1}',
      "```",
    ].join("\n"),
  );
  assertEquals(ex.files, [{
    file: "f.md",
    line: 2,
    name: "stepflow-config.yml",
    content: "plugins: {}\n",
  }]);
  assertEquals(ex.flows.map((f) => [f.line, f.name, f.input, f.expectStdout ?? null]), [
    [6, "a.yaml", '{"x":1}', '{"outcome":"success","result":1}'],
  ]);
  assert(isSynopsis("stepflow test PATH..."));
  assert(!isSynopsis(`stepflow run --input-json '{"A":"[x]"}'   # USE it`));
  assertEquals(codeSpans("a `b\\|c` d `e`"), ["b|c", "e"]);
});

Deno.test({
  name: "docs: every command in README.md, docs/ and examples/*/README.md works as written",
  // the commands start servers and processes that end with them
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const box = await getSandbox();
    const done = new Map<string, { where: string; result: Result }>();
    let ran = 0;
    for (const doc of await documents()) {
      const { commands, files, flows } = extractDoc(
        doc,
        await Deno.readTextFile(`${REPO_ROOT}/${doc}`),
      );
      if (commands.length === 0 && flows.length === 0) continue;
      await t.step(doc, async (t) => {
        for (const cmd of commands) {
          const where = `${cmd.file}:${cmd.line}`;
          const label = `${where} ${cmd.command.split("\n")[0].slice(0, 100)}`;
          const reason = skipReason(cmd);
          if (reason) {
            await t.step({ name: `${label} (skipped: ${reason})`, ignore: true, fn: () => {} });
            continue;
          }
          if (cmd.kind === "synopsis") {
            await t.step(`${label} (synopsis: flags checked)`, () => checkSynopsis(cmd));
            continue;
          }
          await t.step(label, async () => {
            const exported = /^export ([A-Z_]+)=/.exec(cmd.command);
            if (exported) {
              const r = await sh(box, `${cmd.command}\nprintf '%s' "$${exported[1]}"`);
              assertStrictEquals(r.code, 0, r.stderr);
              box.env[exported[1]] = r.stdout;
              return;
            }
            const key = `${cmd.needs.join(",")}|${withoutComment(cmd.command)}`;
            let prior = done.get(key);
            if (!prior) {
              prior = { where, result: await sh(box, cmd.command, { needs: cmd.needs }) };
              done.set(key, prior);
              ran++;
            }
            const r = prior.result;
            assertStrictEquals(
              r.code,
              0,
              `${where}: exit ${r.code}${prior.where !== where ? ` (run at ${prior.where})` : ""}` +
                `\n--- stdout\n${short(r.stdout)}\n--- stderr\n${short(r.stderr)}`,
            );
            if (cmd.expectStdout !== undefined) {
              assert(
                sameOutput(r.stdout, cmd.expectStdout),
                `${where}: stdout differs from the documented output\n--- documented\n` +
                  `${cmd.expectStdout}\n--- actual\n${short(r.stdout)}`,
              );
            }
          });
        }
        if (flows.length === 0) return;
        // flow examples run in a scratch directory with the document's files
        const scratch = `${box.root}/scratch/${doc.replaceAll("/", "_")}`;
        await Deno.mkdir(scratch, { recursive: true });
        for (const f of files) await Deno.writeTextFile(`${scratch}/${f.name}`, f.content);
        for (const ex of flows) {
          const command = `stepflow run --flow ${ex.name} --input-json '${ex.input}'`;
          const label = `${ex.file}:${ex.line} ${command}`;
          if (ex.skip) {
            await t.step({ name: `${label} (skipped: ${ex.skip})`, ignore: true, fn: () => {} });
            continue;
          }
          await t.step(label, async () => {
            await Deno.writeTextFile(`${scratch}/${ex.name}`, ex.flow);
            const r = await sh(box, command, { cwd: scratch });
            ran++;
            const failedRun = ex.expectStdout?.startsWith('{"outcome":"failed"') ?? false;
            assertStrictEquals(r.code, failedRun ? 1 : 0, `${label}\n${r.stdout}\n${r.stderr}`);
            if (ex.expectStdout !== undefined) {
              assert(
                sameOutput(r.stdout, ex.expectStdout),
                `${label}: stdout differs from the documented output\n--- documented\n` +
                  `${ex.expectStdout}\n--- actual\n${short(r.stdout)}`,
              );
            }
          });
        }
      });
    }
    assert(ran >= 20, `ran ${ran} commands`);
  },
});

Deno.test({
  name: "docs: the README's library snippet runs from a temporary directory with dist/mod.js",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const box = await getSandbox();
    const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
    const section = readme.slice(readme.indexOf("## As a library"));
    const program = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    assert(program, "a ts block under 'As a library'");
    const name = /^\/\/ (\S+\.ts)$/m.exec(program)?.[1];
    assert(name, "the snippet names its file in its first comment");
    const shown = /```console\n\$ (.*)\n(.*)\n```/.exec(section);
    assert(shown, "a console block with the command and what it prints");
    const [, run, printed] = shown;
    assert(run.includes(name), `the console block runs ${name}`);

    // `dist/mod.js` as the README builds it (the commands test ran it in the copy already)
    try {
      await Deno.stat(`${box.repo}/dist/mod.js`);
    } catch {
      const b = await sh(box, "npx --yes deno@2.9.6 task bundle");
      assertStrictEquals(b.code, 0, b.stderr);
    }
    const dir = `${box.root}/library-user`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.copyFile(`${box.repo}/dist/mod.js`, `${dir}/mod.js`);
    for (const f of ["flow.yaml", "stepflow-config.yml"]) {
      await Deno.copyFile(`${box.repo}/examples/greet/${f}`, `${dir}/${f}`);
    }
    await Deno.writeTextFile(`${dir}/${name}`, program);
    const r = await sh(box, run, { cwd: dir });
    assertStrictEquals(r.code, 0, `${run}\n${r.stdout}\n${r.stderr}`);
    assert(sameOutput(r.stdout, printed), `printed ${r.stdout}, README says ${printed}`);
    // one import, no deno.json: mod.js imports only node: built-ins
    const text = await Deno.readTextFile(`${dir}/mod.js`);
    for (const m of text.matchAll(/^import\b[^;]*?from\s+"([^"]+)"/gm)) {
      assert(m[1].startsWith("node:"), `mod.js imports ${m[1]}`);
    }
  },
});
