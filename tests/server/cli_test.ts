/**
 * `stepflow submit` and `submit-batch` against the real service, and the local `run-batch`.
 * @module
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
import { SCHEMA, startServer, waitForFile } from "./_server.ts";

const BUILTIN_ONLY = `plugins:
  builtin: { type: builtin }
routes:
  "/builtin/{*component}":
    - plugin: builtin
`;

/** Greets `input.name` with the variable `greeting` (0.8's submit dropped variables). */
const GREET = `schema: ${SCHEMA}
name: greet
variables:
  type: object
  properties:
    greeting: { type: string, default: hello }
steps:
  - id: m
    component: /builtin/create_messages
    input:
      system_instructions: { $from: { variable: greeting } }
      user_prompt: { $from: { workflow: input }, path: "$.name" }
output:
  greeting: { $from: { step: m }, path: "$.messages[0].content" }
  name: { $from: { step: m }, path: "$.messages[1].content" }
`;

Deno.test("stepflow submit runs a flow on the service: result on stdout, variables passed, exit codes", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/greet.yaml`, GREET);
    await Deno.writeTextFile(
      `${dir}/bad.yaml`,
      `schema: ${SCHEMA}\nsteps:\n  - id: a\n    component: /builtin/create_messages\n    input: { $from: { step: nope } }\n`,
    );
    await Deno.writeTextFile(
      `${dir}/fails.yaml`,
      `schema: ${SCHEMA}\nsteps:\n  - id: a\n    component: /builtin/missing\n    input: {}\noutput: { $from: { step: a } }\n`,
    );
    const s = await startServer(dir, { args: ["--store", "memory"], config: BUILTIN_ONLY });
    try {
      const ok = await runCli([
        "submit",
        "--url",
        s.url,
        "--flow",
        "greet.yaml",
        "--input-json",
        '{"name":"Ada","n":9007199254740993}',
        "--variables-json",
        '{"greeting":"bonjour"}',
      ], { cwd: dir });
      assertStrictEquals(ok.code, 0, ok.stderr);
      assertEquals(JSON.parse(ok.stdout), {
        outcome: "success",
        result: { greeting: "bonjour", name: "Ada" },
      });
      // the run is on the service, with its exact input
      const runs = await s.call("GET", "/api/v1/runs");
      assertStrictEquals(runs.body.runs.length, 1);
      const text = await (await fetch(`${s.url}/api/v1/runs/${runs.body.runs[0].runId}`)).text();
      assertStringIncludes(text, '"n":9007199254740993');

      const failed = await runCli(
        ["submit", "--url", s.url, "--flow", "fails.yaml", "--input-json", "{}"],
        { cwd: dir },
      );
      assertStrictEquals(failed.code, 1);
      assertStrictEquals(JSON.parse(failed.stdout).outcome, "failed");
      assertStringIncludes(failed.stderr, "run failed");

      const invalid = await runCli(
        ["submit", "--url", s.url, "--flow", "bad.yaml", "--input-json", "{}"],
        { cwd: dir },
      );
      assertStrictEquals(invalid.code, 2);
      assertStringIncludes(invalid.stderr, "bad.yaml:5:");
      assertStringIncludes(invalid.stderr, "nope");
      assertStrictEquals(invalid.stdout, "");
    } finally {
      await s.stop();
    }
    const down = await runCli(
      ["submit", "--url", s.url, "--flow", "greet.yaml", "--input-json", "{}"],
      { cwd: dir },
    );
    assertStrictEquals(down.code, 1);
    assertStringIncludes(down.stderr, "cannot reach the Stepflow service");
  });
});

Deno.test("stepflow submit: Ctrl-C / SIGTERM cancels the run on the service, names it and exits 130", async () => {
  await withTempDir(async (dir) => {
    const s = await startServer(dir, { args: ["--store", "memory"] });
    try {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        const ready = `${dir}/ready-${signal}`;
        await Deno.writeTextFile(
          `${dir}/nap.yaml`,
          `schema: ${SCHEMA}\nname: nap\nsteps:\n  - id: nap\n    component: /py/sleep\n` +
            `    input: { ms: 60000, ready_file: ${JSON.stringify(ready)} }\n` +
            `output: { $from: { step: nap } }\n`,
        );
        const sub = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--quiet",
            `${REPO_ROOT}/main.ts`,
            "submit",
            "--url",
            s.url,
            "--flow",
            "nap.yaml",
            "--input-json",
            "{}",
          ],
          cwd: dir,
          env: { NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        await waitForFile(ready); // the step is running on the service
        sub.kill(signal);
        const out = await sub.output();
        const stderr = new TextDecoder().decode(out.stderr);
        assertStrictEquals(out.code, 130, stderr);
        const m = /run (\S+) cancelled on the service/.exec(stderr);
        assert(m, stderr);
        const run = await s.call("GET", `/api/v1/runs/${m[1]}`);
        assertStrictEquals(run.body.status, "cancelled");
      }
    } finally {
      await s.stop();
    }
  });
});

Deno.test("stepflow submit and submit-batch: a service killed while they wait is named lost, with the run to follow, not a wrong --url", async () => {
  await withTempDir(async (dir) => {
    // was: 'cannot reach the Stepflow service at ...: connection refused (nothing listens
    // there). ... pass --url http://127.0.0.1:7840', for a service that had accepted the run
    const ready = `${dir}/ready`;
    await Deno.writeTextFile(
      `${dir}/nap.yaml`,
      `schema: ${SCHEMA}\nname: nap\nsteps:\n  - id: nap\n    component: /py/sleep\n` +
        `    input: { ms: 60000, ready_file: ${JSON.stringify(ready)} }\n` +
        `output: { $from: { step: nap } }\n`,
    );
    await Deno.writeTextFile(`${dir}/in.jsonl`, "{}\n");
    const commands = [
      ["submit", "--input-json", "{}", "--verbose"],
      ["submit-batch", "--inputs", "in.jsonl", "--verbose"],
    ];
    for (const command of commands) {
      await Deno.remove(ready).catch(() => {});
      const s = await startServer(dir, { args: ["--store", "sqlite:state.db"] });
      const sub = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          `${REPO_ROOT}/main.ts`,
          command[0],
          "--url",
          s.url,
          "--flow",
          "nap.yaml",
          ...command.slice(1),
        ],
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await waitForFile(ready); // the step is running on the service
      // and the client has its answer (the id it prints with --verbose)
      let stderr = "";
      const reader = sub.stderr.pipeThrough(new TextDecoderStream()).getReader();
      while (!/(run|batch)_id: /.test(stderr)) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
      await s.stop("SIGKILL");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
      const status = await sub.status;
      await sub.stdout.cancel();
      assertStrictEquals(status.code, 1, stderr);
      assertStringIncludes(
        stderr,
        `error: lost the Stepflow service at ${s.url} while waiting for`,
      );
      assertStringIncludes(stderr, "it stopped after accepting it");
      assert(/follow it with GET \/api\/v1\/(runs|batches)\/[0-9a-f-]{36}/.test(stderr), stderr);
      assert(!stderr.includes("--url"), stderr);
    }
  });
});

Deno.test("stepflow submit with a token (STEPFLOW_TOKEN) and without", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/greet.yaml`, GREET);
    const s = await startServer(dir, {
      args: ["--store", "memory", "--token", "t0k"],
      config: BUILTIN_ONLY,
    });
    try {
      const args = [
        "submit",
        "--url",
        s.url,
        "--flow",
        "greet.yaml",
        "--input-json",
        '{"name":"x"}',
      ];
      const refused = await runCli(args, { cwd: dir });
      assertStrictEquals(refused.code, 1);
      assertStringIncludes(refused.stderr, "401");
      const ok = await runCli(args, { cwd: dir, env: { STEPFLOW_TOKEN: "t0k" } });
      assertStrictEquals(ok.code, 0, ok.stderr);
    } finally {
      await s.stop();
    }
  });
});

Deno.test("stepflow submit-batch: JSONL {index, status, result} in input order; exit 1 when a run failed", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/greet.yaml`, GREET);
    await Deno.writeTextFile(
      `${dir}/inputs.jsonl`,
      '{"name":"a"}\n{"name":"b"}\n\n{"name":"c","n":9007199254740993}\n',
    );
    await Deno.writeTextFile(`${dir}/partly.jsonl`, '{"name":"a"}\n{"nom":"b"}\n');
    const s = await startServer(dir, { args: ["--store", "memory"], config: BUILTIN_ONLY });
    try {
      const r = await runCli([
        "submit-batch",
        "--url",
        s.url,
        "--flow",
        "greet.yaml",
        "--inputs",
        "inputs.jsonl",
        "--max-concurrent",
        "2",
      ], { cwd: dir });
      assertStrictEquals(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assertEquals(lines.map((l) => [l.index, l.status, l.result.result.name]), [
        [0, "completed", "a"],
        [1, "completed", "b"],
        [2, "completed", "c"],
      ]);
      assertStringIncludes(r.stderr, "3/3 runs: 3 completed, 0 failed");
      const batches = await s.call("GET", "/api/v1/batches");
      assertStrictEquals(batches.body.batches.length, 1);

      const out = await runCli([
        "submit-batch",
        "--url",
        s.url,
        "--flow",
        "greet.yaml",
        "--inputs",
        "partly.jsonl",
        "--output",
        "out.jsonl",
      ], { cwd: dir });
      assertStrictEquals(out.code, 1);
      const written = (await Deno.readTextFile(`${dir}/out.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assertEquals(written.map((l) => l.status), ["completed", "failed"]);
      assertStrictEquals(written[1].result.outcome, "failed");
    } finally {
      await s.stop();
    }
  });
});

Deno.test("stepflow run-batch runs locally: JSONL in input order, failures included, --max-concurrent", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, BUILTIN_ONLY);
    await Deno.writeTextFile(`${dir}/greet.yaml`, GREET);
    const inputs = Array.from(
      { length: 20 },
      (_, i) => i === 7 ? '{"nom":"x"}' : JSON.stringify({ name: `n${i}` }),
    ).join("\n");
    await Deno.writeTextFile(`${dir}/inputs.jsonl`, inputs + "\n");
    const r = await runCli([
      "run-batch",
      "--flow",
      "greet.yaml",
      "--inputs",
      "inputs.jsonl",
      "--max-concurrent",
      "3",
      "--variables-json",
      '{"greeting":"hi"}',
    ], { cwd: dir });
    assertStrictEquals(r.code, 1, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertStrictEquals(lines.length, 20);
    lines.forEach((l, i) => {
      assertStrictEquals(l.index, i);
      if (i === 7) {
        assertStrictEquals(l.status, "failed");
        assertStrictEquals(l.result.outcome, "failed");
      } else {
        assertStrictEquals(l.status, "completed");
        assertEquals(l.result.result, { greeting: "hi", name: `n${i}` });
      }
    });
    assertStringIncludes(r.stderr, "20/20 runs: 19 completed, 1 failed");

    const ok = await runCli([
      "run-batch",
      "--flow",
      "greet.yaml",
      "--inputs",
      "inputs.jsonl",
      "--output",
      "out.jsonl",
    ], { cwd: dir });
    assertStrictEquals(ok.code, 1);
    assertStrictEquals(ok.stdout, "");
    assertStrictEquals((await Deno.readTextFile(`${dir}/out.jsonl`)).trim().split("\n").length, 20);

    await Deno.writeTextFile(`${dir}/broken.jsonl`, '{"name":"a"}\n{"name":\n');
    const bad = await runCli(["run-batch", "--flow", "greet.yaml", "--inputs", "broken.jsonl"], {
      cwd: dir,
    });
    assertStrictEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "broken.jsonl:2:");
    assert(bad.stdout === "");
  });
});
