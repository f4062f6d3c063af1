/**
 * `stepflow run-batch` when its results cannot be written (a full disk: /dev/full). Before, the
 * write error escaped the command: `error: No space left on device (os error 28)` with exit 2
 * ("nothing was run") although every run had run, no file named, and the remaining runs went on.
 * Now the batch stops, the message names the output and how many results were not written, and
 * the exit code is 1.
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
