/**
 * Control characters in flow names, step ids and messages (an ESC that clears the screen, sets
 * the window title or hides text; a bidi override) are shown as escapes on stderr, in log lines
 * and on a terminal's stdout — never sent to the terminal. A flow stored by any client of the REST
 * service is listed by `stepflow runs list`, so its name is not trusted.
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { terminalSafe } from "../../src/core/terminal_text.ts";

/** ESC, BEL or a right-to-left override: what must not reach the terminal. */
// deno-lint-ignore no-control-regex
const RAW = /[\x1b\x07\u202e]/;

const CONFIG =
  `plugins:\n  builtin: { type: builtin }\nroutes:\n  "/builtin/{*component}":\n    - plugin: builtin\n`;

/** A flow whose name and step id hold terminal commands; its step fails (unknown component). */
const EVIL = `schema: https://stepflow.org/schemas/v1/flow.json
name: "evil\\e[2J\\e]0;pwned\\a"
description: d
steps:
  - id: "a\\e[8mhidden\\u202eright"
    component: /builtin/nope
    input: {}
output: { $from: { step: "a\\e[8mhidden\\u202eright" } }
`;

Deno.test("terminalSafe escapes ESC, BEL, lone CR, C1 and bidi controls; keeps tabs, newlines and CRLF", () => {
  assertEquals(terminalSafe("plain\ttext\nline\r\n"), "plain\ttext\nline\r\n");
  assertEquals(terminalSafe("a\x1b[2Jb\x07c"), "a\\u001b[2Jb\\u0007c");
  assertEquals(terminalSafe("over\rwrite"), "over\\u000dwrite");
  assertEquals(terminalSafe("x\u009by\u202ez\u2066"), "x\\u009by\\u202ez\\u2066");
  assertEquals(terminalSafe("héllo ✓ 名前"), "héllo ✓ 名前");
});

Deno.test("stepflow run: a step id with ESC in it is escaped in the failure on stderr", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, CONFIG);
    await Deno.writeTextFile(`${dir}/evil.yaml`, EVIL);
    const r = await runCli(
      ["run", "--flow", "evil.yaml", "--input-json", "{}", "--store", "runs.db", "--verbose"],
      { cwd: dir },
    );
    assertStrictEquals(r.code, 1, r.stderr);
    assert(!RAW.test(r.stderr), JSON.stringify(r.stderr));
    assertStringIncludes(r.stderr, "failed step 'a\\u001b[8mhidden\\u202eright'");
    // the result on stdout is JSON: escaped by JSON itself
    assert(!RAW.test(r.stdout), r.stdout);
  });
});

Deno.test("stepflow runs list / show on a terminal show a hostile flow name and step id escaped", async () => {
  let script = false;
  try {
    script =
      (await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
        .output()).success;
  } catch {
    // no util-linux script(1): the terminal case cannot be driven here
  }
  if (!script) {
    console.error("terminal_text_test: skipped the terminal case: script(1) is not installed");
    return;
  }
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, CONFIG);
    await Deno.writeTextFile(`${dir}/evil.yaml`, EVIL);
    const r = await runCli(
      ["run", "--flow", "evil.yaml", "--input-json", "{}", "--store", "runs.db", "--verbose"],
      { cwd: dir },
    );
    const runId = /run_id: (\S+)/.exec(r.stderr)![1];
    const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    for (const args of [["runs", "list"], ["runs", "show", runId]]) {
      const cmd = [Deno.execPath(), "run", "-A", "--quiet", `${REPO_ROOT}/main.ts`, ...args]
        .concat(["--store", "runs.db"]).map(q).join(" ");
      const out = await new Deno.Command("script", {
        args: ["-qec", cmd, "/dev/null"],
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assertStrictEquals(out.code, 0, text);
      assertStringIncludes(text, "evil\\u001b[2J\\u001b]0;pwned\\u0007");
      assert(!RAW.test(text), JSON.stringify(text));
    }
  });
});
