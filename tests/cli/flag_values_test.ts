/**
 * Flag values that cannot work, found by trying the CLI as a user: each is a usage error (exit 2)
 * naming the flag. A `--store` (or a config's SQLite `stateStore`) whose path is wrong, for every
 * command that takes one — not a diagnostic blamed on the config file, an SQLite error with exit
 * 1, or (for `runs`/`signal`) a new empty database; a `serve --host` this machine cannot listen
 * on; and `run_id:` is printed only for runs that started.
 */
import {
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";

const HELLO = `${REPO_ROOT}/examples/hello/flow.yaml`;
const RUN = ["run", "--flow", HELLO, "--input-json", '{"topic":"a"}'];
const ID = "00000000-0000-0000-0000-000000000000";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("--store in a directory that does not exist: exit 2 naming the flag and the directory", async () => {
  await withTempDir(async (dir) => {
    for (const args of [[...RUN], ["serve", "--port", "0"]]) {
      const r = await runCli([...args, "--store", "nodir/x.db"], { cwd: dir });
      assertStrictEquals(r.code, 2, r.stderr);
      assertStrictEquals(r.stdout, "");
      assertStringIncludes(r.stderr, "--store 'nodir/x.db': cannot create");
      assertStringIncludes(r.stderr, `directory '${dir}/nodir' does not exist`);
      // the old message blamed the example's config file
      assertStrictEquals(r.stderr.includes("stepflow-config.yml"), false, r.stderr);
    }
  });
});

Deno.test("--store naming a file that is not a database: the error names the flag the user gave, not stateStore.databaseUrl", async () => {
  // before: `stateStore.databaseUrl 'sqlite:/tmp/x/junk.db': cannot open ... (point databaseUrl
  // at a new file, ...)` for `run --store junk.db` and `serve --store junk.db`
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/junk.db`, "not a database, only text ".repeat(40));
    for (const args of [[...RUN], ["serve", "--port", "0"]]) {
      const r = await runCli([...args, "--store", "junk.db"], { cwd: dir });
      assertStrictEquals(r.code, 1, r.stderr);
      assertStringIncludes(
        r.stderr,
        `--store 'junk.db': cannot open '${dir}/junk.db': file is not a database (point --store ` +
          "at a new file, or at a database written by stepflow)",
      );
      assertStrictEquals(r.stderr.includes("databaseUrl"), false, r.stderr);
    }
    // serve's default store, which no flag or config named
    await Deno.rename(`${dir}/junk.db`, `${dir}/stepflow.db`);
    const r = await runCli(["serve", "--port", "0"], { cwd: dir });
    assertStrictEquals(r.code, 1, r.stderr);
    assertStringIncludes(
      r.stderr,
      "the default store ./stepflow.db (neither --store nor the config's stateStore names one): " +
        `cannot open '${dir}/stepflow.db': file is not a database (point --store at a new file`,
    );
  });
});

Deno.test("--store naming a directory, or a missing file with mode=ro: exit 2 before anything runs", async () => {
  await withTempDir(async (dir) => {
    let r = await runCli([...RUN, "--store", dir]);
    assertStrictEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, `'${dir}' is a directory`);
    r = await runCli([...RUN, "--store", "sqlite:new.db?mode=ro"], { cwd: dir });
    assertStrictEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, "mode=ro does not create one");
    assertStrictEquals(await exists(`${dir}/new.db`), false);
  });
});

Deno.test("runs list/show/prune, signal and resume on a mistyped --store: exit 2, and no empty database is created", async () => {
  await withTempDir(async (dir) => {
    for (
      const args of [
        ["runs", "list"],
        ["runs", "show", ID],
        ["runs", "prune", "--older-than", "1d"],
        ["signal", ID, "go"],
        ["resume", ID],
      ]
    ) {
      const r = await runCli([...args, "--store", "typo.db"], { cwd: dir });
      assertStrictEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertStringIncludes(r.stderr, `--store 'typo.db': no database at '${dir}/typo.db'`);
      assertStrictEquals(await exists(`${dir}/typo.db`), false, args.join(" "));
    }
    // a config's stateStore is checked the same way, naming the config
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      'plugins: {}\nroutes: {}\nstateStore: {type: sqlite, databaseUrl: "sqlite:gone.db"}\n',
    );
    const r = await runCli(["runs", "list"], { cwd: dir });
    assertStrictEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, "stepflow-config.yml");
    assertStringIncludes(r.stderr, `no database at '${dir}/gone.db'`);
    assertStrictEquals(await exists(`${dir}/gone.db`), false);
  });
});

Deno.test("a good --store still works: run records, runs list reads", async () => {
  await withTempDir(async (dir) => {
    let r = await runCli([...RUN, "--store", "runs.db"], { cwd: dir });
    assertStrictEquals(r.code, 0, r.stderr);
    r = await runCli(["runs", "list", "--store", "runs.db"], { cwd: dir });
    assertStrictEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "hello");
  });
});

Deno.test("run --store: no run_id is printed for a run that never started (a step service that exits at start)", async () => {
  // found by hand: 'run_id: <uuid>' was printed before the plugins started, so an engine that
  // could not start left an id that 'stepflow runs show' did not know
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: t
description: one step of a step service that exits at once
steps:
  - { id: a, component: /svc/x, input: {} }
output: { $from: { step: a } }
`,
    );
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:
  svc: { type: stepflow, transport: stdio, command: ${Deno.execPath()}, args: [eval, "Deno.exit(3)"] }
routes:
  "/svc/{*component}": [{ plugin: svc }]
`,
    );
    const r = await runCli([
      "run",
      "--flow",
      "flow.yaml",
      "--input-json",
      "{}",
      "--store",
      "runs.db",
    ], {
      cwd: dir,
    });
    assertStrictEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, "cannot start the engine");
    assertStrictEquals(r.stderr.includes("run_id:"), false, r.stderr);
  });
});

Deno.test("serve --host that is not an address of this machine: exit 2 naming --host", async () => {
  // found by hand: '--host 999.1.1.1' said only "failed to lookup address information" (exit 1)
  for (const host of ["999.1.1.1", "192.0.2.1"]) {
    const r = await runCli([
      "serve",
      "--host",
      host,
      "--port",
      "0",
      "--store",
      "memory",
      "--token",
      "t",
    ]);
    assertStrictEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, `cannot listen on --host '${host}'`);
  }
});

Deno.test("--variables-json / --variables that are not a mapping: exit 2 naming the flag and what was given", async () => {
  // before: "variables must be an object of name: value", naming no flag
  const r = await runCli([...RUN, "--variables-json", "[1]"]);
  assertStrictEquals(r.code, 2, r.stderr);
  assertStringIncludes(
    r.stderr,
    "--variables-json must be a mapping of variable names to values",
  );
  assertStringIncludes(r.stderr, "got a list");
});

Deno.test("--store sqlite: (no file name) is exit 2 for run and serve, not a store in memory or the cwd blamed on the config", async () => {
  await withTempDir(async (dir) => {
    for (const store of ["sqlite:", "sqlite://", "sqlite:?mode=ro"]) {
      for (const args of [[...RUN], ["serve", "--port", "0"]]) {
        const r = await runCli([...args, "--store", store], { cwd: dir });
        assertStrictEquals(r.code, 2, `${args[0]} ${store}: ${r.stderr}`);
        assertStringIncludes(r.stderr, `--store '${store}' names no database file`);
        assertStrictEquals(r.stderr.includes("stepflow-config.yml"), false, r.stderr);
      }
    }
    // sqlite://FILE is relative to the current directory, as sqlite:FILE
    const r = await runCli([...RUN, "--store", "sqlite://here.db"], { cwd: dir });
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(await exists(`${dir}/here.db`), true);
  });
});

Deno.test("a read-only store (mode=ro) is refused by run, serve and resume before anything runs; runs list reads it", async () => {
  await withTempDir(async (dir) => {
    const made = await runCli([...RUN, "--store", "runs.db"], { cwd: dir });
    assertStrictEquals(made.code, 0, made.stderr);
    const ro = "sqlite:runs.db?mode=ro";
    for (const args of [[...RUN], ["serve", "--port", "0"], ["resume", ID]]) {
      const r = await runCli([...args, "--store", ro], { cwd: dir });
      assertStrictEquals(r.code, 1, `${args[0]}: ${r.stderr}`);
      assertStrictEquals(r.stdout, "", args[0]);
      assertStringIncludes(
        r.stderr,
        `is opened read-only (mode=ro): runs cannot be recorded in it`,
      );
      // it used to run and fail each run with 507 "recorded failed as soon as the database can be
      // written again"
      assertStrictEquals(r.stderr.includes("507"), false, r.stderr);
    }
    const list = await runCli(["runs", "list", "--store", ro], { cwd: dir });
    assertStrictEquals(list.code, 0, list.stderr);
    assertStringIncludes(list.stdout, "completed");
  });
});

Deno.test("visualize -o and submit --output naming a directory, or a file in a missing one: exit 2 before anything is drawn or run", async () => {
  await withTempDir(async (dir) => {
    for (const out of [dir, `${dir}/nodir/x.svg`]) {
      const v = await runCli(["visualize", "--flow", HELLO, "-o", out]);
      assertStrictEquals(v.code, 2, v.stderr);
      assertStringIncludes(v.stderr, `--output '${out}'`);
      // nothing listens on port 1: the check comes before the service is called (and a run on
      // it would have been done for a result that could not be written)
      const s = await runCli([
        "submit",
        "--url",
        "http://127.0.0.1:1",
        "--flow",
        HELLO,
        "--input-json",
        "{}",
        "--output",
        out,
      ]);
      assertStrictEquals(s.code, 2, s.stderr);
      assertStringIncludes(s.stderr, `--output '${out}'`);
      assertStrictEquals(s.stderr.includes("cannot reach"), false, s.stderr);
    }
  });
});

Deno.test("run-batch --inputs that is not UTF-8: exit 2 at its line and column, not 'Unexpected token �'", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(
      `${dir}/in.jsonl`,
      new Uint8Array([
        ...new TextEncoder().encode('{"topic":"a"}\n{"topic":"caf'),
        0xe9,
        0x22,
        0x7d,
      ]),
    );
    const r = await runCli(["run-batch", "--flow", HELLO, "--inputs", "in.jsonl"], { cwd: dir });
    assertStrictEquals(r.code, 2, r.stderr);
    assertStringIncludes(
      r.stderr,
      "--inputs: in.jsonl:2:14: the file is not valid UTF-8 (byte 0xE9",
    );
    assertStrictEquals(r.stdout, "");
  });
});

Deno.test("an option that takes one value, given twice, is a usage error naming both (the last won silently); collecting options and flags may repeat", async () => {
  const cases: [string[], string][] = [
    [[...RUN, "--flow", `${REPO_ROOT}/examples/greet/flow.yaml`], "option '--flow' is given twice"],
    [
      [...RUN, "--input-json", '{"topic":"b"}'],
      `("{\\"topic\\":\\"a\\"}" and "{\\"topic\\":\\"b\\"}")`,
    ],
    [
      ["--log-level", "info", ...RUN, "--log-level", "debug"],
      "option '--log-level' is given twice",
    ],
    [["runs", "list", "--store", "a.db", "--store", "b.db"], "option '--store' is given twice"],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assertStrictEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stderr, message);
    assertStringIncludes(r.stderr, ": give it once");
    assertStrictEquals(r.stdout, "");
  }
  // a flag without a value may repeat
  const quiet = await runCli([...RUN, "--quiet", "-q"]);
  assertStrictEquals(quiet.code, 0, quiet.stderr);
  // --case collects its values
  const cases2 = await runCli(["test", HELLO, "--case", "stepflow", "--case", "stepflow"]);
  assertStrictEquals(cases2.code, 0, cases2.stderr);
});
