/**
 * A step service that writes to stderr without pause (issue: the engine grew from 124 to 210 MB
 * over 60 s). The supervisor keeps only the last {@linkcode STDERR_TAIL_LINES} lines and queues
 * nothing; the growth was the garbage of a 64 KiB chunk per read and of one log line per stderr
 * line, all of them logged. Now stderr is read into one reused buffer and at most
 * {@linkcode STDERR_LOG_LINES_PER_SECOND} lines a second are logged, with a note saying how many
 * were dropped. Tests count lines and measure the heap after a forced GC; nothing is timed.
 * @module
 */
import { assert, assertEquals, assertStringIncludes, REPO_ROOT } from "../../_assert.ts";
import { recordingLogger } from "../../_log.ts";
import {
  Child,
  STDERR_LOG_LINES_PER_SECOND,
  STDERR_TAIL_LINES,
} from "../../../src/plugins/supervisor.ts";

const HARNESS = `${REPO_ROOT}/tests/fixtures/workers/stderr/flood_harness.ts`;

Deno.test("a flood of stderr lines: at most STDERR_LOG_LINES_PER_SECOND a second are logged, and notes count the rest", async () => {
  const LINES = 200_000;
  const log = recordingLogger();
  const started = Date.now();
  const child = Child.spawn({
    name: "step service 'flood'",
    command: "sh",
    args: ["-c", `yes 'flooding stderr' | head -n ${LINES} >&2; echo last line >&2`],
    env: {},
    clearEnv: false,
    cwd: Deno.cwd(),
    log,
  });
  await child.status;
  await child.drain();
  const seconds = Math.ceil((Date.now() - started) / 1000);
  const logged = log.lines.filter((l) => /^\[info\] stderr: (flooding stderr|last line)$/.test(l));
  const notes = log.lines.filter((l) => l.includes("not logged: over"));
  let dropped = 0;
  for (const n of notes) {
    const m = /^\[info\] stderr: ([\d,]+) more lines? \(.+\) not logged: over (\d+) lines a second$/
      .exec(n);
    assert(m, `note: ${n}`);
    assertEquals(Number(m[2]), STDERR_LOG_LINES_PER_SECOND);
    dropped += Number(m[1].replaceAll(",", ""));
  }
  // every line is either logged or counted in a note; was: all 200,001 logged
  assertEquals(logged.length + dropped, LINES + 1);
  assert(
    logged.length <= STDERR_LOG_LINES_PER_SECOND * (seconds + 1),
    `${logged.length} lines logged in ${seconds} s`,
  );
  assert(notes.length >= 1 && notes.length <= seconds + 1, `${notes.length} notes`);
  assertEquals(log.lines.length, logged.length + notes.length);
  // the tail still has the last lines, for a failure message
  assertEquals(child.stderrTail.length, STDERR_TAIL_LINES);
  assertEquals(child.stderrTail.at(-1), "last line");
  assertStringIncludes(child.stderrSummary(), "last line");
});

Deno.test("a flood of stderr lines: nothing of it is kept (heap used after a forced GC)", async () => {
  const BYTES = 64 * 1024 * 1024;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--v8-flags=--expose-gc", HARNESS, String(BYTES)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert(out.success, err);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  // 64 MB went through; what is left of it after a GC is the tail and a few buffers
  const grown = r.after - r.before;
  assert(grown < 4 * 1024 * 1024, `heap used grew by ${grown} bytes over a 64 MB flood`);
  assertEquals(r.tail, 10);
  assert(r.logLines > 0 && r.logLines < 900_000, `${r.logLines} log lines`);
});
