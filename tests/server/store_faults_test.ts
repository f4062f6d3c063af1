/**
 * `stepflow serve` on a disk that fills up (issue 13, wave 6), as a user meets it: a real server,
 * its SQLite file on a small tmpfs, filled while a run's step is held (mounting needs root: the
 * tests are skipped otherwise; tests/state/store_health_test.ts covers the store without root).
 *
 * Before: `/health` answered 200 healthy while every run failed with 507; the run told 507 stayed
 * `running` in the database, `GET /runs/{id}` said `running`, and the next start resumed it and
 * completed it without its client knowing. Now: `/health` answers 503 naming the database, the
 * cause and what to do, and 200 again once a commit succeeds; the 507 says what becomes of the
 * run; the run reads `failed` at once, is recorded `failed` (507) as soon as the disk has room,
 * and is then not resumed by a restart. A service stopped while the disk is still full cannot
 * record anything: the next start resumes the run, as its 507 said. A `wait: false` run whose
 * record (or queued row) cannot be stored was answered 202 with an id that then gave 404; it is
 * now answered failed with 507, as `wait: true` is — and, as a debug run or a queued one, told
 * that its record could not be stored: it reads `failed` and is recorded `failed` (with its
 * input) once there is room (it gave 404 for ever). A batch whose records cannot be stored is
 * answered 507 before any of its runs starts. The same `/health` with a
 * PostgreSQL store whose writes are refused (skipped without STEPFLOW_TEST_PG_URL).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import {
  assert,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  withTempDir,
} from "../_assert.ts";
import {
  GATED_FLOW as FLOW,
  journalConfig as config,
  mkfifo,
  type RunningServer,
  startServer,
  storeFlow,
  THREE_STEPS,
  TWO_STEPS,
} from "./_server.ts";
import { allowWrites, pgTest, refuseWrites, withClient, withPgDatabase } from "../_postgres.ts";

async function run(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/** Whether this process may mount a tmpfs (root, with the capability). */
const canMount = await (async () => {
  const dir = await Deno.makeTempDir();
  try {
    if (!(await run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]))) return false;
    await run("umount", [dir]);
    return true;
  } finally {
    await Deno.remove(dir).catch(() => {});
  }
})();

/** Runs `fn` with a small tmpfs mounted at `dir/disk`. */
async function withSmallDisk(fn: (dir: string, disk: string) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const disk = `${dir}/disk`;
    await Deno.mkdir(disk);
    assert(await run("mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", disk]), "mount");
    try {
      await fn(dir, disk);
    } finally {
      await run("umount", ["-l", disk]);
    }
  });
}

/**
 * Cuts the WAL file of SQLite database `db` to nothing, then fills `disk` (the small disk it is
 * on): no write of the store has room left.
 */
async function cutWalAndFill(db: string, disk: string): Promise<void> {
  const c = new DatabaseSync(db);
  try {
    const [busy] = Object.values(c.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get()!);
    assertStrictEquals(busy, 0, "checkpoint");
  } finally {
    c.close();
  }
  await fill(`${disk}/filler`);
}

/** Fills the file system of `path`'s directory with the file `path`. */
async function fill(path: string): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true });
  try {
    for (const size of [64 * 1024, 4096, 512]) {
      const chunk = new Uint8Array(size);
      try {
        for (;;) await f.write(chunk);
      } catch (e) {
        assert(String(e).includes("No space left"), String(e));
      }
    }
  } finally {
    f.close();
  }
}

/**
 * Starts a run of FLOW (key `key`, wait: false) whose step is held at its gate, fills the disk,
 * lets the step answer, and returns the 507 answer a repeated request (same key) gets.
 */
async function runIntoFullDisk(
  s: RunningServer,
  dir: string,
  disk: string,
  flowId: string,
  key: string,
) {
  const ready = `${dir}/${key}.ready`;
  const release = `${dir}/${key}.release`;
  await mkfifo(ready, release);
  const input = { v: 1, ready, release, pad: 1_000_000 };
  const started = await s.call("POST", "/api/v1/runs", { flowId, input, wait: false }, {
    "Idempotency-Key": key,
  });
  assertStrictEquals(started.status, 202, JSON.stringify(started.body));
  await Deno.readTextFile(ready); // the step is called: the run's row is stored
  await cutWalAndFill(`${disk}/state.db`, disk);
  await Deno.writeTextFile(release, "go\n");
  const answer = await s.call("POST", "/api/v1/runs", { flowId, input }, {
    "Idempotency-Key": key,
  });
  assertStrictEquals(answer.body.runId, started.body.runId);
  return { runId: started.body.runId as string, answer, input, release };
}

function storedRow(path: string, runId: string): { status: string; code?: number } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare("SELECT status, result_json FROM runs WHERE id = ?").get(runId) as {
      status: string;
      result_json: string | null;
    };
    const result = row.result_json === null ? undefined : JSON.parse(row.result_json);
    return { status: row.status, code: result?.error?.code };
  } finally {
    db.close();
  }
}

Deno.test({
  name:
    "serve on a full disk: /health 503 until a commit succeeds; the run told 507 reads failed, is recorded failed once there is room, and a restart does not resume it",
  ignore: !canMount,
  fn: () =>
    withSmallDisk(async (dir, disk) => {
      const journal = `${dir}/journal.txt`;
      const db = `${disk}/state.db`;
      const args = ["--store", db];
      let s = await startServer(dir, { args, config: config(journal) });
      let runId: string;
      try {
        const flowId = await storeFlow(s, FLOW);
        const r = await runIntoFullDisk(s, dir, disk, flowId, "one");
        runId = r.runId;
        const a = r.answer;
        assertStrictEquals(a.status, 200, JSON.stringify(a.body));
        assertStrictEquals(a.body.status, "failed");
        assertStrictEquals(a.body.result.error.code, 507);
        const m = a.body.result.error.message as string;
        assertStringIncludes(m, `SQLite database '${db}': database or disk is full`);
        assertStringIncludes(m, "free space on the disk holding it");
        assertStringIncludes(m, "It is recorded failed with this error as soon as the database");
        // GET says what the client was told (it said running)
        assertStrictEquals((await s.call("GET", `/api/v1/runs/${runId}`)).body.status, "failed");

        for (const path of ["/health", "/api/v1/health"]) {
          const h = await s.call("GET", path);
          assertStrictEquals(h.status, 503, JSON.stringify(h.body));
          assertStrictEquals(h.body.code, 503);
          assertStrictEquals(h.body.status, "unhealthy");
          assertStringIncludes(h.body.message, "database or disk is full");
          assertStringIncludes(h.body.message, "free space on the disk holding it");
          assertStringIncludes(h.body.message, "healthy again once a commit succeeds");
          assertStrictEquals(h.body.store.kind, "sqlite");
          assertStrictEquals(h.body.store.database, db);
          assertStrictEquals(h.body.store.unstoredRunEnds, 1);
          assert(h.body.store.failedCommits >= 1, JSON.stringify(h.body));
        }
        assertStrictEquals(storedRow(db, runId).status, "running");

        await Deno.remove(`${disk}/filler`);
        const h = await s.call("GET", "/health");
        assertStrictEquals(h.status, 200, JSON.stringify(h.body));
        assertStrictEquals(JSON.stringify(Object.keys(h.body)), '["status","timestamp","version"]');
        assertStrictEquals(h.body.status, "healthy");
        assertStrictEquals(JSON.stringify(storedRow(db, runId)), '{"status":"failed","code":507}');
      } finally {
        assertStrictEquals(await s.stop(), 0);
      }
      s = await startServer(dir, { args, config: false });
      try {
        const g = await s.call("GET", `/api/v1/runs/${runId}`);
        assertStrictEquals(g.body.status, "failed");
        assertStrictEquals(g.body.result.error.code, 507);
      } finally {
        assertStrictEquals(await s.stop(), 0);
      }
      assert(!s.stderr().includes("resumed"), s.stderr());
      const calls = (await Deno.readTextFile(journal)).trim().split("\n");
      assertStrictEquals(calls.length, 1, "the step service was called once");
    }),
});

Deno.test({
  name:
    "serve and run on a disk that is full before they start: exit 1 naming the database, the cause and what to do",
  ignore: !canMount,
  fn: () =>
    withSmallDisk(async (dir, disk) => {
      // was: "cannot open '.../state.db': database or disk is full" and nothing more, where a
      // commit failing the same way says to free space on the disk
      await fill(`${disk}/filler`);
      await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(`${dir}/journal.txt`));
      for (
        const command of [["serve", "--port", "0"], [
          "run",
          "--flow",
          "flow.json",
          "--input-json",
          '{"q":1}',
        ]]
      ) {
        await Deno.writeTextFile(`${dir}/flow.json`, JSON.stringify(THREE_STEPS));
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--quiet",
            `${REPO_ROOT}/main.ts`,
            ...command,
            "--store",
            `${disk}/state.db`,
          ],
          cwd: dir,
          env: { NO_COLOR: "1" },
          stdin: "null",
        }).output();
        const err = new TextDecoder().decode(out.stderr);
        assertStrictEquals(out.code, 1, err);
        assertStringIncludes(err, `cannot open '${disk}/state.db': database or disk is full`);
        assertStringIncludes(err, "(free space on the disk holding it");
      }
    }),
});

Deno.test({
  name:
    "serve under a file size limit (ulimit -f) that its database outgrows: runs fail with 507 and the service lives on",
  ignore: !(await run("prlimit", ["--version"])),
  fn: () =>
    withTempDir(async (dir) => {
      // was: killed by SIGXFSZ ("File size limit exceeded") in the middle of a commit, every run
      // in progress lost with it; its clients saw the connection close without an answer
      const db = `${dir}/state.db`;
      const s = await startServer(dir, { args: ["--store", db], config: false });
      try {
        const flowId = await storeFlow(s, THREE_STEPS);
        // the limit is set once the service runs (Deno's own caches are written at start)
        const used = (await Deno.stat(db)).size + (await Deno.stat(`${db}-wal`)).size;
        const limit = used + 256 * 1024;
        assert(await run("prlimit", [`--pid=${s.pid}`, `--fsize=${limit}`]), "prlimit");
        const answer = await s.call("POST", "/api/v1/runs", {
          flowId,
          input: { q: "x".repeat(1_000_000) },
        });
        assertStrictEquals(answer.status, 200, JSON.stringify(answer.body).slice(0, 500));
        assertStrictEquals(answer.body.result.error.code, 507);
        assertStringIncludes(answer.body.result.error.message, `SQLite database '${db}'`);
        const h = await s.call("GET", "/health");
        assertStrictEquals(h.status, 503, JSON.stringify(h.body));
        assertStringIncludes(h.body.message, "file size limit");
        // small runs still get an answer (failed or not) from the same process
        const small = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "y" } });
        assertStrictEquals(small.status, 200, JSON.stringify(small.body));
      } finally {
        assertStrictEquals(await s.stop(), 0, s.stderr());
      }
    }),
});

Deno.test({
  name:
    "serve stopped while the disk is still full: the run told 507 is left as stored and the next start resumes it, as the 507 said",
  ignore: !canMount,
  fn: () =>
    withSmallDisk(async (dir, disk) => {
      const journal = `${dir}/journal.txt`;
      const db = `${disk}/state.db`;
      const args = ["--store", db];
      let s = await startServer(dir, { args, config: config(journal) });
      let flowId: string;
      let r: Awaited<ReturnType<typeof runIntoFullDisk>>;
      try {
        flowId = await storeFlow(s, FLOW);
        r = await runIntoFullDisk(s, dir, disk, flowId, "two");
        assertStrictEquals(r.answer.body.result.error.code, 507);
        assertStringIncludes(
          r.answer.body.result.error.message,
          "if this process stops before that, the run stays as it was stored and is resumed",
        );
      } finally {
        assertStrictEquals(await s.stop(), 0);
      }
      assertStringIncludes(s.stderr(), "the next start on this database resumes them");
      assertStringIncludes(s.stderr(), r.runId);
      await Deno.remove(`${disk}/filler`);
      s = await startServer(dir, { args, config: false });
      try {
        await Deno.readTextFile(`${dir}/two.ready`); // resumed: its step is called again
        await Deno.writeTextFile(r.release, "go\n");
        const done = await s.call("POST", "/api/v1/runs", { flowId, input: r.input }, {
          "Idempotency-Key": "two",
        });
        assertStrictEquals(done.body.runId, r.runId);
        assertStrictEquals(done.body.status, "completed", JSON.stringify(done.body));
        assertStrictEquals(done.body.result.result, 2);
      } finally {
        assertStrictEquals(await s.stop(), 0);
      }
      assertStringIncludes(s.stderr(), `resumed 1 interrupted run(s): ${r.runId}`);
    }),
});

Deno.test({
  name:
    "serve on a full disk: a run whose record cannot be stored (wait: false, queued, debug) is answered failed with 507 saying so, reads failed, and is recorded failed once there is room; a batch is answered 507 before its runs start (each was answered with an id that then gave 404)",
  ignore: !canMount,
  fn: () =>
    withSmallDisk(async (dir, disk) => {
      const db = `${disk}/state.db`;
      const args = ["--store", db, "--max-concurrent-runs", "1"];
      const s = await startServer(dir, { args, config: config(`${dir}/journal.txt`) });
      let told: { runId: string; error: { code: number; message: string } }[] = [];
      try {
        const flowId = await storeFlow(s, THREE_STEPS);
        const ok = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" }, wait: false });
        assertStrictEquals(ok.status, 202, JSON.stringify(ok.body)); // stored: 202 as before
        await s.call("GET", `/api/v1/runs/${ok.body.runId}/events?after=0`); // (ended)
        const gated = await storeFlow(s, FLOW);
        const held = { v: 1, ready: `${dir}/h.ready`, release: `${dir}/h.release`, pad: 0 };
        await mkfifo(held.ready, held.release);
        const h = s.call("POST", "/api/v1/runs", { flowId: gated, input: held });
        await Deno.readTextFile(held.ready); // it holds the one slot
        await cutWalAndFill(db, disk);
        // a run queued behind the held one: the commit of its queued row fails
        const q = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "z" }, wait: false });
        assertStrictEquals(q.status, 200, JSON.stringify(q.body));
        assertStrictEquals(q.body.status, "failed");
        assertStrictEquals(q.body.result.error.code, 507);
        assertStringIncludes(q.body.result.error.message, "The run could not be queued");
        assertStringIncludes(q.body.result.error.message, "database or disk is full");
        await Deno.writeTextFile(held.release, "go\n");
        assertStrictEquals((await h).body.result.error.code, 507);
        // a run that starts at once: the commit of its record fails
        const a = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "y" }, wait: false });
        assertStrictEquals(a.status, 200, JSON.stringify(a.body));
        assertStrictEquals(a.body.status, "failed");
        assertStrictEquals(a.body.result.error.code, 507);
        assertStringIncludes(a.body.result.error.message, "database or disk is full");
        // a batch: answered 507 before any of its runs starts (it was answered 200 with an id
        // that a restart did not know); its runs are recorded failed once there is room
        const batch = await s.call("POST", "/api/v1/batches", {
          flowId,
          inputs: [{ q: "b0" }, { q: "b1" }],
        });
        assertStrictEquals(batch.status, 507, JSON.stringify(batch.body));
        assertStrictEquals(batch.body.code, 507);
        assertStringIncludes(batch.body.message, "The batch could not be stored");
        assertStringIncludes(batch.body.message, "database or disk is full");
        assertStringIncludes(batch.body.message, "None of its runs started");
        // a debug run (answered at once before): the same
        const dbg = await s.call("POST", "/api/v1/runs", {
          flowId,
          input: { q: "d" },
          debug: true,
        });
        assertStrictEquals(dbg.status, 200, JSON.stringify(dbg.body));
        assertStrictEquals(dbg.body.status, "failed");
        assertStrictEquals(dbg.body.debug, true);
        assertStrictEquals(dbg.body.result.error.code, 507);
        told = [q, a, dbg].map((r) => ({ runId: r.body.runId, error: r.body.result.error }));
        // the queued run's row, the debug run's record: not stored — each is told so, and that
        // it is recorded failed once there is room (or nothing of it if the service stops). On a
        // real full disk a small commit sometimes finds room (bytes freed by a failed write):
        // then the record is stored and a later write fails, and the 507 says that instead.
        for (const t of [told[0], told[2]]) {
          if (t.error.message.includes("the steps stored before the failure are kept")) {
            assertStringIncludes(t.error.message, "recorded failed with this error");
            continue;
          }
          assertStringIncludes(t.error.message, "The run's record could not be stored");
          assertStringIncludes(t.error.message, "recorded failed with this error, with its input");
          assertStringIncludes(t.error.message, "nothing of the run is stored");
        }
        for (const t of told) {
          // GET says what the client was told (it said 404)
          const g = await s.call("GET", `/api/v1/runs/${t.runId}`);
          assertStrictEquals(g.status, 200, JSON.stringify(g.body));
          assertStrictEquals(g.body.status, "failed");
          assertStrictEquals(g.body.result.error.message, t.error.message);
        }
        await Deno.remove(`${disk}/filler`);
        const well = await s.call("GET", "/health");
        assertStrictEquals(well.status, 200, JSON.stringify(well.body));
        for (const t of told) {
          assertStrictEquals(
            JSON.stringify(storedRow(db, t.runId)),
            '{"status":"failed","code":507}',
          );
        }
        // the run recorded failed keeps its input: it can be run again
        const again = await s.call("GET", `/api/v1/runs/${a.body.runId}`);
        assertStrictEquals(JSON.stringify(again.body.input), '{"q":"y"}');
      } finally {
        assertStrictEquals(await s.stop(), 0);
      }
      // a restart finds them failed as they were told (not resumed: they were not interrupted)
      const two = await startServer(dir, { args, config: false });
      try {
        for (const t of told) {
          const g = await two.call("GET", `/api/v1/runs/${t.runId}`);
          assertStrictEquals(g.body.status, "failed", JSON.stringify(g.body));
          assertStrictEquals(g.body.result.error.code, 507);
        }
      } finally {
        assertStrictEquals(await two.stop(), 0);
      }
      assert(!two.stderr().includes("resumed"), two.stderr());
    }),
});

Deno.test({
  name:
    "serve on a full disk: a debug step whose result cannot be stored is answered with the run's 507 (it was answered with its result, as if stored), and the run reads failed",
  ignore: !canMount,
  fn: () =>
    withSmallDisk(async (dir, disk) => {
      const db = `${disk}/state.db`;
      const s = await startServer(dir, { args: ["--store", db], config: config(`${dir}/j.txt`) });
      try {
        const flowId = await storeFlow(s, TWO_STEPS);
        // a result of 1 MB: its commit cannot find room on the full disk
        const d = await s.call("POST", "/api/v1/runs", {
          flowId,
          input: { q: "x".repeat(1_000_000) },
          debug: true,
        });
        assertStrictEquals(d.status, 200, JSON.stringify(d.body).slice(0, 500));
        assertStrictEquals(d.body.status, "paused"); // (its record is stored)
        const runId = d.body.runId as string;
        await cutWalAndFill(db, disk);
        const a = await s.call("POST", `/api/v1/runs/${runId}/debug/step`, { stepIds: ["a"] });
        assertStrictEquals(a.status, 200, JSON.stringify(a.body).slice(0, 500));
        const r = a.body.results.a;
        assertStrictEquals(r.outcome, "failed", JSON.stringify(r).slice(0, 500));
        assertStrictEquals(r.error.code, 507);
        assertStringIncludes(r.error.message, "database or disk is full");
        assertStringIncludes(r.error.message, "recorded failed with this error");
        const g = await s.call("GET", `/api/v1/runs/${runId}`);
        assertStrictEquals(g.body.status, "failed", JSON.stringify(g.body).slice(0, 500));
        assertStrictEquals(g.body.result.error.code, 507);
        await Deno.remove(`${disk}/filler`);
        const well = await s.call("GET", "/health");
        assertStrictEquals(well.status, 200, JSON.stringify(well.body));
        assertStrictEquals(JSON.stringify(storedRow(db, runId)), '{"status":"failed","code":507}');
      } finally {
        assertStrictEquals(await s.stop(), 0);
      }
    }),
});

pgTest(
  "serve on PostgreSQL that refuses writes (as on a full disk): /health 503 naming the database and the cause, 200 again once it accepts them",
  (server) =>
    withPgDatabase(server, (url) =>
      withTempDir(async (dir) => {
        const s = await startServer(dir, { args: ["--store", url] });
        try {
          const flowId = await storeFlow(s, THREE_STEPS);
          const ok = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" } });
          assertStrictEquals(ok.body.status, "completed");
          await refuseWrites(url, ["runs", "engines"]);
          const failed = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "y" } });
          assertStrictEquals(failed.body.status, "failed", JSON.stringify(failed.body));
          assertStrictEquals(failed.body.result.error.code, 507);
          const h = await s.call("GET", "/health");
          assertStrictEquals(h.status, 503, JSON.stringify(h.body));
          assertStrictEquals(h.body.store.kind, "postgres");
          assertStringIncludes(h.body.message, "No space left on device (SQLSTATE 53100)");
          assertStringIncludes(h.body.store.database, "postgres://");
          await allowWrites(url, ["runs", "engines"]);
          const well = await s.call("GET", "/api/v1/health");
          assertStrictEquals(well.status, 200, JSON.stringify(well.body));
          const again = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "z" } });
          assertStrictEquals(again.body.status, "completed");
        } finally {
          assertStrictEquals(await s.stop(), 0);
        }
      })),
);

pgTest(
  "serve on PostgreSQL that refuses writes: a run, debug run or batch whose record cannot be stored is answered failed with 507 saying so, reads failed, and is recorded failed with its input once the database accepts writes (it said that nothing is stored, and its id gave 404)",
  (server) =>
    withPgDatabase(server, (url) =>
      withTempDir(async (dir) => {
        const s = await startServer(dir, { args: ["--store", url] });
        try {
          const flowId = await storeFlow(s, THREE_STEPS);
          await refuseWrites(url, ["runs", "batches", "batch_runs"]);
          const told: { runId: string; message: string }[] = [];
          for (const extra of [{ wait: false }, { debug: true }]) {
            const r = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "y" }, ...extra });
            assertStrictEquals(r.status, 200, JSON.stringify(r.body));
            assertStrictEquals(r.body.status, "failed", JSON.stringify(r.body));
            assertStrictEquals(r.body.result.error.code, 507, JSON.stringify(r.body));
            const m = r.body.result.error.message as string;
            assertStringIncludes(m, "No space left on device");
            assertStringIncludes(m, "The run's record could not be stored");
            assertStringIncludes(m, "recorded failed with this error, with its input");
            told.push({ runId: r.body.runId, message: m });
          }
          const b = await s.call("POST", "/api/v1/batches", { flowId, inputs: [{ q: "b" }] });
          assertStrictEquals(b.status, 507, JSON.stringify(b.body));
          assertStringIncludes(b.body.message, "The batch could not be stored");
          for (const t of told) {
            // GET says what the client was told (it said 404)
            const g = await s.call("GET", `/api/v1/runs/${t.runId}`);
            assertStrictEquals(g.status, 200, JSON.stringify(g.body));
            assertStrictEquals(g.body.status, "failed");
            assertStrictEquals(g.body.result.error.message, t.message);
          }
          await allowWrites(url, ["runs", "batches", "batch_runs"]);
          const well = await s.call("GET", "/health");
          assertStrictEquals(well.status, 200, JSON.stringify(well.body));
          // recorded by the commit that found the database writable again (or the /health probe)
          const rows = await withClient(url, async (sql) => {
            for (let i = 0;; i++) {
              const rows = await sql`
                SELECT id, status, input_json, result_json FROM runs
                WHERE input_json IN ('{"q":"y"}', '{"q":"b"}') ORDER BY input_json, id`;
              if (rows.length === 3 || i >= 600) return rows;
              await new Promise((ok) => setTimeout(ok, 50));
            }
          });
          assertStrictEquals(rows.length, 3, JSON.stringify(rows));
          for (const row of rows) {
            assertStrictEquals(row.status, "failed", JSON.stringify(row));
            assertStrictEquals(JSON.parse(row.result_json).error.code, 507);
          }
          assertStrictEquals(rows.filter((r) => r.input_json === '{"q":"b"}').length, 1);
          for (const t of told) {
            assert(rows.some((r) => r.id === t.runId), t.runId);
            const g = await s.call("GET", `/api/v1/runs/${t.runId}`);
            assertStrictEquals(g.body.status, "failed", JSON.stringify(g.body));
            assertStrictEquals(g.body.result.error.message, t.message);
            assertStrictEquals(JSON.stringify(g.body.input), '{"q":"y"}');
          }
        } finally {
          assertStrictEquals(await s.stop(), 0);
        }
      })),
);
