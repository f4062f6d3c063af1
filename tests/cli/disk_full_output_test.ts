/**
 * Commands whose output cannot be written (a full disk: /dev/full). `stepflow run-batch`: before, the
 * write error escaped the command: `error: No space left on device (os error 28)` with exit 2
 * ("nothing was run") although every run had run, no file named, and the remaining runs went on.
 * Now the batch stops, the message names the output and how many results were not written, and
 * the exit code is 1. Any other command whose stdout fails: `error: cannot write to stdout: ...`,
 * exit 1 (was exit 2, the code of bad usage).
 */
import { assertEquals, assertStringIncludes, REPO_ROOT, runCli, withTempDir } from "../_assert.ts";

const HELLO = `${REPO_ROOT}/examples/hello/flow.yaml`;
const hasDevFull = (() => {
  try {
    return Deno.statSync("/dev/full").isCharDevice === true;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "run-batch: results that cannot be written (disk full) stop the batch with exit 1 and a message naming the output",
  ignore: !hasDevFull,
  fn: async () => {
    await withTempDir(async (dir) => {
      const inputs = `${dir}/in.jsonl`;
      await Deno.writeTextFile(
        inputs,
        ["a", "b", "c"].map((t) => JSON.stringify({ topic: t })).join("\n") + "\n",
      );
      const r = await runCli([
        "run-batch",
        "--flow",
        HELLO,
        "--inputs",
        inputs,
        "--output",
        "/dev/full",
        "--quiet",
      ]);
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, "cannot write to --output '/dev/full' after 0 line(s)");
      assertStringIncludes(r.stderr, "3 of 3 results are not written");
    });
  },
});

Deno.test({
  name: "a command whose stdout cannot be written (disk full) says so and exits 1, not 2 (usage)",
  ignore: !hasDevFull,
  fn: async () => {
    // before: `error: No space left on device (os error 28)`, exit 2 ("bad usage")
    for (
      const args of [
        ["validate", "--flow", HELLO],
        ["visualize", "--flow", HELLO, "--format", "mermaid"],
        ["--version"],
      ]
    ) {
      // the child's stdout is /dev/full (a shell redirection)
      const out = await new Deno.Command("sh", {
        args: [
          "-c",
          '"$@" > /dev/full',
          "sh",
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          `${REPO_ROOT}/main.ts`,
          ...args,
        ],
        stdin: "null",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 1, `${args.join(" ")}: ${stderr}`);
      assertStringIncludes(stderr, "error: cannot write to stdout: No space left on device");
    }
  },
});

Deno.test("run-batch | head -1: the batch stops once its reader is gone (exit 1, says so) instead of running every input for nothing", async () => {
  await withTempDir(async (dir) => {
    const inputs = `${dir}/in.jsonl`;
    await Deno.writeTextFile(
      inputs,
      Array.from({ length: 2000 }, (_, i) => JSON.stringify({ topic: `t${i}` })).join("\n") + "\n",
    );
    const cmd = `"${Deno.execPath()}" run -A "${REPO_ROOT}/main.ts" run-batch --flow "${HELLO}" ` +
      `--inputs "${inputs}" --max-concurrent 1 --quiet 2> "${dir}/err.txt" | head -1; ` +
      `echo "rc=\${PIPESTATUS[0]}"`;
    const out = await new Deno.Command("bash", { args: ["-c", cmd], stdout: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout);
    const stderr = await Deno.readTextFile(`${dir}/err.txt`);
    // before: exit 0, nothing on stderr, and all 2000 inputs run after head had its line
    assertStringIncludes(text, '{"index":0,"status":"completed"');
    assertStringIncludes(text, "rc=1", stderr);
    assertStringIncludes(stderr, "its reader went away (a closed pipe); the batch was stopped");
    assertStringIncludes(stderr, "the runs not started were not run");
  });
});
