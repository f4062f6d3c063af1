/**
 * Issue 10, item 1: a run timeout and Ctrl-C/SIGTERM are not starved by built-in work. The
 * failing input was a `/builtin/map` over 100,000 built-in items: `run --timeout 1s` returned
 * success after 2-13 s, and SIGTERM was ignored until the end. Real CLI processes; the limits
 * here are generous (a loaded machine); bench/responsiveness.ts measures the real figures
 * (docs/performance.md).
 * @module
 */
import { assert, assertEquals, assertStringIncludes, REPO_ROOT, withTempDir } from "../_assert.ts";

const ITEMS = 100_000;

/**
 * A map whose items run a chain of five built-in steps: seconds of built-in work on a quiet
 * machine (a one-step item costs ~8 µs there since wave 8: 100,000 one-step items took under 1 s,
 * and the run ended before the signal or the deadline came).
 */
async function writeBigMap(dir: string): Promise<void> {
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    `plugins:
  builtin: { type: builtin }
routes:
  "/builtin/{*component}": [{ plugin: builtin }]
`,
  );
  await Deno.writeTextFile(
    `${dir}/flow.yaml`,
    `schema: https://stepflow.org/schemas/v1/flow.json
name: big_map
steps:
  - id: each
    component: /builtin/map
    input:
      items: { $from: { workflow: input }, path: items }
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          name: chain
          steps:
            - id: m
              component: /builtin/create_messages
              input: { user_prompt: { $from: { workflow: input } } }
            - id: m1
              component: /builtin/create_messages
              input: { user_prompt: { $from: { step: m }, path: "$.messages[0].content" } }
            - id: m2
              component: /builtin/create_messages
              input: { user_prompt: { $from: { step: m1 }, path: "$.messages[0].content" } }
            - id: m3
              component: /builtin/create_messages
              input: { user_prompt: { $from: { step: m2 }, path: "$.messages[0].content" } }
            - id: m4
              component: /builtin/create_messages
              input: { user_prompt: { $from: { step: m3 }, path: "$.messages[0].content" } }
          output: { $from: { step: m4 } }
output: { $from: { step: each }, path: successful }
`,
  );
  const items = Array.from({ length: ITEMS }, (_, i) => String(i));
  await Deno.writeTextFile(`${dir}/input.json`, JSON.stringify({ items }));
}

/** A running CLI whose stderr lines are collected with the time each arrived. */
function startCli(dir: string, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${REPO_ROOT}/main.ts`, ...args],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: { at: number; text: string }[] = [];
  const waiters: { re: RegExp; resolve: (at: number) => void }[] = [];
  const stdout = new Response(child.stdout).text();
  const stderr = (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of child.stderr) {
      buf += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const at = performance.now();
        lines.push({ at, text });
        for (const w of waiters.filter((w) => w.re.test(text))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(at);
        }
      }
    }
  })();
  return {
    child,
    /** When a stderr line matching `re` arrived (waits for it; rejects when stderr ends). */
    lineAt(re: RegExp): Promise<number> {
      const seen = lines.find((l) => re.test(l.text));
      if (seen) return Promise.resolve(seen.at);
      return Promise.race([
        new Promise<number>((resolve) => waiters.push({ re, resolve })),
        stderr.then(() => {
          throw new Error(`no stderr line matched ${re}:\n${lines.map((l) => l.text).join("\n")}`);
        }),
      ]);
    },
    async done() {
      const status = await child.status;
      const end = performance.now();
      await stderr;
      return { status, end, stdout: await stdout, stderr: lines.map((l) => l.text).join("\n") };
    },
  };
}

Deno.test("run --timeout 1s on a map over 100,000 built-in items ends at the deadline (code 524)", async () => {
  await withTempDir(async (dir) => {
    await writeBigMap(dir);
    const cli = startCli(dir, [
      "run",
      "--flow",
      "flow.yaml",
      "--input",
      "input.json",
      "--timeout",
      "1s",
      "--verbose",
    ]);
    const runStarted = await cli.lineAt(/^run_id: /);
    const { status, end, stdout, stderr } = await cli.done();
    assertEquals(status.code, 1, stderr);
    assertStringIncludes(stdout, '"code":524');
    assertStringIncludes(stderr, "The run timed out after 1s");
    // the engine starts after the run_id line; generous for a loaded machine (measured: ~50 ms)
    const late = end - runStarted - 1000;
    assert(late < 1000, `the run ended ${Math.round(late)} ms after its deadline`);
  });
});

Deno.test("SIGTERM during a map over 100,000 built-in items is handled at once (exit 130)", async () => {
  await withTempDir(async (dir) => {
    await writeBigMap(dir);
    const cli = startCli(dir, [
      "run",
      "--flow",
      "flow.yaml",
      "--input",
      "input.json",
      "--verbose",
    ]);
    await cli.lineAt(/^run_id: /);
    // into the map (the engine starts ~50 ms after the run_id line) and far from its end (seconds)
    await new Promise((r) => setTimeout(r, 500));
    const sent = performance.now();
    cli.child.kill("SIGTERM");
    const handled = await cli.lineAt(/^SIGTERM: cancelling the run/);
    const { status, end, stdout, stderr } = await cli.done();
    assertEquals(status.code, 130, stderr);
    assertStringIncludes(stdout, '"outcome":"failed"');
    assert(handled - sent < 1000, `SIGTERM was handled ${Math.round(handled - sent)} ms late`);
    assert(end - sent < 3000, `the CLI exited ${Math.round(end - sent)} ms after SIGTERM`);
  });
});
