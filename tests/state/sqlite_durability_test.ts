/**
 * The SQLite store's durability: WAL and busy timeout, group commit promises, loud write
 * failures, fencing of an engine declared dead, and marking the runs of dead engines.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  withTempDir,
} from "../_assert.ts";
import { DatabaseSync } from "node:sqlite";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { RUN_INTERRUPTED, type RunRecord, StoreError } from "../../src/state/store.ts";

function run(id: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: id,
    flowId: "f".repeat(64),
    status: "running",
    input: { id },
    createdAt: new Date().toISOString(),
    ...extra,
  };
}

/** Rows of `sql` read through a second connection (what another process sees). */
function peek(path: string, sql: string, ...args: (string | number)[]): Record<string, unknown>[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(sql).all(...args) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

Deno.test("SqliteStateStore opens files in WAL mode and records every migration", async () => {
  await withTempDir(async (dir) => {
    const s = SqliteStateStore.open(`sqlite:${dir}/runs.db`);
    try {
      assertEquals(peek(`${dir}/runs.db`, "PRAGMA journal_mode"), [{ journal_mode: "wal" }]);
      assertEquals(
        peek(`${dir}/runs.db`, "SELECT name FROM _stepflow_migrations ORDER BY name").map((r) =>
          r.name
        ),
        [
          "0001_initial_schema",
          "0002_durable_runs",
          "0003_run_options",
          "0004_batch_max_concurrency",
        ],
      );
    } finally {
      await s.close();
    }
  });
});

Deno.test("group commit: writes of one turn share one promise, resolved once another connection sees them", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    const s = SqliteStateStore.open(`sqlite:${path}`);
    try {
      const p1 = s.createRun(run("r1"));
      const p2 = s.recordStepResult("r1", {
        stepIndex: 0,
        stepId: "a",
        result: { outcome: "success", result: 1 },
      });
      assert(p1 instanceof Promise && p1 === p2, "one batch, one promise");
      // queued, not committed yet
      assertEquals(peek(path, "SELECT id FROM runs"), []);
      await p2;
      assertEquals(peek(path, "SELECT id FROM runs"), [{ id: "r1" }]);
      assertEquals(peek(path, "SELECT step_id, status FROM step_info"), [
        { step_id: "a", status: "completed" },
      ]);
      // the next write is a new batch
      const p3 = s.completeRun("r1", "completed", { outcome: "success", result: 1 });
      assert(p3 !== p2);
      await p3;
      assertEquals(peek(path, "SELECT status FROM runs"), [{ status: "completed" }]);
    } finally {
      await s.close();
    }
  });
});

Deno.test("a run that starts and ends in one batch is written finished at once; a status set in between keeps its order", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    for (const commits of ["loop", "worker"] as const) {
      const s = SqliteStateStore.open(`sqlite:${path}`);
      if (commits === "worker") await s.useCommitWorker();
      try {
        const a = `short-${commits}`;
        const b = `paused-${commits}`;
        const c = `later-${commits}`;
        const result = { outcome: "success" as const, result: { n: 1 } };
        // one batch: the row of `a` is patched, `b`'s end comes after its status update
        s.createRun(run(a));
        s.completeRun(a, "completed", result);
        s.createRun(run(b));
        s.setRunStatus(b, "paused");
        s.completeRun(b, "failed", { outcome: "failed", error: { code: 500, message: "x" } });
        s.createRun(run(c));
        await s.flush();
        // a later batch: an UPDATE as before
        await s.completeRun(c, "completed", result);
        const rows = peek(
          path,
          "SELECT id, status, result_json, completed_at IS NOT NULL AS done FROM runs WHERE id IN (?, ?, ?) ORDER BY id",
          a,
          b,
          c,
        );
        assertEquals(rows.map((r) => [r.id, r.status, r.done]), [
          [c, "completed", 1],
          [b, "failed", 1],
          [a, "completed", 1],
        ]);
        assertEquals(JSON.parse(rows[2].result_json as string), result);
        assertEquals(
          peek(path, "SELECT type FROM run_events WHERE run_id = ? ORDER BY id", a).map((r) =>
            r.type
          ),
          ["run_started", "run_completed"],
        );
      } finally {
        await s.close();
      }
    }
  });
});

Deno.test("flush() commits what is queued at the end of the microtask burst", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    const s = SqliteStateStore.open(`sqlite:${path}`);
    try {
      s.createRun(run("r1"));
      const f = s.flush();
      s.putBlob({ later: true }, "data"); // joins the same commit
      await f;
      assertEquals(peek(path, "SELECT count(*) AS n FROM blobs"), [{ n: 1 }]);
      await s.flush(); // nothing queued: resolves at once
    } finally {
      await s.close();
    }
  });
});

Deno.test("a failed commit rejects naming the database and the cause, and fails completeRun of the runs it touched", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    await SqliteStateStore.open(`sqlite:${path}`).close();
    const s = SqliteStateStore.open(`sqlite:${path}?mode=ro`);
    try {
      // dropped promises must not become unhandled rejections (that would end this test)
      s.createRun(run("r1"));
      s.recordStepResult("r1", {
        stepIndex: 0,
        stepId: "a",
        result: { outcome: "success", result: 1 },
      });
      await s.flush().catch(() => {});
      const done = s.completeRun("r1", "completed", { outcome: "success", result: 1 });
      const e = await assertRejects(() => done as Promise<void>, StoreError);
      assertStringIncludes(e.message, `SQLite database '${path}'`);
      assertStringIncludes(e.message, "readonly");
      assertStrictEquals((e as StoreError).database, path);
    } finally {
      await s.close();
    }
  });
});

for (const worker of [false, true]) {
  const how = worker ? " (commits in a worker)" : "";
  Deno.test(`a run whose earlier write failed cannot complete successfully even if later commits work${how}`, async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/runs.db`;
      const s = SqliteStateStore.open(`sqlite:${path}`, { busyTimeoutMs: 50 });
      if (worker) await s.useCommitWorker();
      try {
        // another process holds the write lock past the busy timeout: this batch fails
        const other = new DatabaseSync(path, { timeout: 0 });
        other.exec("BEGIN IMMEDIATE");
        s.createRun(run("r2"));
        await assertRejects(() => s.flush(), StoreError, "database is locked");
        other.exec("ROLLBACK");
        other.close();
        // r2's last commit works, but r2 lost its first write: completing it must fail
        const done = s.completeRun("r2", "completed", { outcome: "success", result: 1 });
        const e = await assertRejects(
          () => done as Promise<void>,
          StoreError,
          "busy timeout of 50 ms",
        );
        assertStringIncludes(e.message, path);
        // a run created after the failure is not affected
        s.createRun(run("r3"));
        await s.completeRun("r3", "completed");
        assertStrictEquals((await s.getRun("r3"))?.status, "completed");
      } finally {
        await s.close();
      }
    });
  });

  Deno.test(`an engine declared dead by another process has its writes refused (fencing)${how}`, async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/runs.db`;
      const s = SqliteStateStore.open(`sqlite:${path}`);
      if (worker) await s.useCommitWorker();
      try {
        await s.createRun(run("r1"));
        assertEquals(peek(path, "SELECT count(*) AS n FROM engines"), [{ n: 1 }]);
        const db = new DatabaseSync(path);
        db.prepare("DELETE FROM engines WHERE id = ?").run(s.engineId);
        db.close();
        const p = s.recordStepResult("r1", {
          stepIndex: 0,
          stepId: "a",
          result: { outcome: "success", result: 1 },
        });
        await assertRejects(() => p as Promise<void>, StoreError, "declared dead");
        assertEquals(peek(path, "SELECT count(*) AS n FROM step_results"), [{ n: 0 }]);
      } finally {
        await s.close();
      }
    });
  });
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

function ownSelf(): { pidStart: string; pidNs: string } {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  return {
    pidStart: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19],
    pidNs: Deno.readLinkSync("/proc/self/ns/pid"),
  };
}

Deno.test("opening the store marks running runs of a dead engine failed (503) with an event; live engines' runs stay running", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    const live = SqliteStateStore.open(`sqlite:${path}`);
    try {
      await live.createRun(run("alive"));
      // a dead engine (its process exited), with a root run, a nested run and a running step
      const db = new DatabaseSync(path);
      const { pidNs } = ownSelf();
      const at = new Date().toISOString();
      db.prepare(
        `INSERT INTO engines(id, pid, pid_start, pid_ns, started_at, heartbeat_at)
         VALUES ('dead-engine', ?, '1', ?, ?, ?)`,
      ).run(await deadPid(), pidNs, at, at);
      for (const [id, parent] of [["gone", null], ["gone-kid", "gone"]]) {
        db.prepare(
          `INSERT INTO runs(id, flow_id, status, input_json, created_at, parent_run_id,
             root_run_id, owner_id, lease_epoch) VALUES (?, 'f', 'running', 'null', ?, ?, 'gone',
             'dead-engine', 1)`,
        ).run(id, at, parent);
      }
      db.prepare(
        `INSERT INTO step_info(run_id, step_index, step_id, component, status, created_at,
           updated_at) VALUES ('gone', 0, 'a', '/x', 'running', ?, ?)`,
      ).run(at, at);
      db.close();

      const next = SqliteStateStore.open(`sqlite:${path}`);
      try {
        const gone = await next.getRun("gone");
        assertStrictEquals(gone?.status, "failed");
        assert(gone?.result?.outcome === "failed");
        assertStrictEquals(gone.result.error.code, RUN_INTERRUPTED);
        assertStringIncludes(gone.result.error.message, "stepflow resume gone");
        assertStrictEquals((await next.getRun("gone-kid"))?.status, "failed");
        assertStrictEquals((await next.getStepInfo("gone"))[0].status, "failed");
        const events = await next.getEvents({ rootRunId: "gone" });
        assertEquals(events.map((e) => [e.runId, e.type]).sort(), [
          ["gone", "run_interrupted"],
          ["gone-kid", "run_interrupted"],
        ]);
        assertEquals(peek(path, "SELECT id FROM engines WHERE id = 'dead-engine'"), []);
        // the live engine (this process) keeps its run
        assertStrictEquals((await next.getRun("alive"))?.status, "running");
      } finally {
        await next.close();
      }
    } finally {
      await live.close();
    }
  });
});

Deno.test("without a process to check, a stale heartbeat means dead and a fresh one alive", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    await SqliteStateStore.open(`sqlite:${path}`).close();
    const db = new DatabaseSync(path);
    const fresh = new Date().toISOString();
    const stale = new Date(Date.now() - 120_000).toISOString();
    for (const [engine, beat] of [["far-fresh", fresh], ["far-stale", stale]]) {
      // another host: no pid to check
      db.prepare(
        `INSERT INTO engines(id, host, pid, started_at, heartbeat_at)
         VALUES (?, 'elsewhere', 1, ?, ?)`,
      ).run(engine, beat, beat);
      db.prepare(
        `INSERT INTO runs(id, flow_id, status, created_at, owner_id) VALUES (?, 'f', 'running', ?, ?)`,
      ).run(`run-${engine}`, fresh, engine);
    }
    db.close();
    const s = SqliteStateStore.open(`sqlite:${path}`, { staleAfterMs: 60_000 });
    try {
      assertStrictEquals((await s.getRun("run-far-fresh"))?.status, "running");
      assertStrictEquals((await s.getRun("run-far-stale"))?.status, "failed");
      // a fresh heartbeat protects the run from being claimed by another engine
      const claim = await s.claimRun("run-far-fresh");
      assertStrictEquals(claim.claimed, false);
      assertStrictEquals(claim.claimed === false && claim.owner?.host, "elsewhere");
      assertEquals(await s.claimRun("run-far-stale"), { claimed: true, leaseEpoch: 1 });
    } finally {
      await s.close();
    }
  });
});

Deno.test("close() marks the runs it did not finish interrupted and removes its engine row", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    const s = SqliteStateStore.open(`sqlite:${path}`);
    s.createRun(run("done"));
    s.createRun(run("unfinished"));
    s.completeRun("done", "completed", { outcome: "success", result: 1 });
    await s.close();
    assertEquals(peek(path, "SELECT id, status FROM runs ORDER BY id"), [
      { id: "done", status: "completed" },
      { id: "unfinished", status: "failed" },
    ]);
    assertEquals(peek(path, "SELECT count(*) AS n FROM engines"), [{ n: 0 }]);
  });
});

Deno.test("two stores on one file commit concurrently without losing writes", async () => {
  await withTempDir(async (dir) => {
    const a = SqliteStateStore.open(`sqlite:${dir}/runs.db`);
    const b = SqliteStateStore.open(`sqlite:${dir}/runs.db`);
    try {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        const s = i % 2 ? a : b;
        s.createRun(run(`r${i}`));
        writes.push(s.completeRun(`r${i}`, "completed") as Promise<void>);
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 0));
      }
      await Promise.all(writes);
      assertStrictEquals((await a.listRuns({ status: "completed" })).length, 200);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
