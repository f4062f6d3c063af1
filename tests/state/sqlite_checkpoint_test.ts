/**
 * WAL checkpoints of the SQLite store run in a worker thread with its own connection
 * (src/state/sqlite_checkpoint.ts), so the event loop never copies the WAL or fsyncs.
 */
import { assert, assertEquals, assertStrictEquals, withTempDir } from "../_assert.ts";
import { DatabaseSync } from "node:sqlite";
import { Checkpointer } from "../../src/state/sqlite_checkpoint.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";

Deno.test("Checkpointer: a PASSIVE checkpoint in a worker copies the WAL while this connection writes on", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/w.db`;
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x TEXT)");
    const insert = db.prepare("INSERT INTO t VALUES (?)");
    for (let i = 0; i < 200; i++) insert.run("x".repeat(1000)); // one transaction (and frames) each
    const failures: string[] = [];
    const c = new Checkpointer(path, 1000, (m) => failures.push(m));
    try {
      const r = await c.checkpointNow();
      assertStrictEquals(r.busy, 0);
      assert(r.log > 50, `WAL frames: ${r.log}`);
      assertStrictEquals(r.checkpointed, r.log);
      // the writer starts the WAL over: the next checkpoint has little to copy
      insert.run("y");
      const r2 = await c.checkpointNow();
      assert(r2.log < r.log, `${r2.log} < ${r.log}`);
      assertStrictEquals(c.count, 2);
    } finally {
      await c.close();
      db.close();
    }
    assertEquals(failures, []);
  });
});

Deno.test("SqliteStateStore: many commits over time are checkpointed by the worker; close stops it", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    const s = SqliteStateStore.open(`sqlite:${path}`);
    try {
      // commits until the worker has checkpointed twice (every 250 ms at most)
      let i = 0;
      const end = Date.now() + 20_000;
      while (s.workerCheckpoints < 2 && Date.now() < end) {
        await s.createRun({
          runId: `r${i++}`,
          flowId: "f".repeat(64),
          status: "running",
          input: { pad: "p".repeat(2000) },
          createdAt: new Date().toISOString(),
        });
      }
      assert(s.workerCheckpoints >= 2, `checkpoints in the worker: ${s.workerCheckpoints}`);
    } finally {
      await s.close();
    }
    // closing checkpointed everything: no WAL left behind
    let walLeft = 0;
    try {
      walLeft = (await Deno.stat(`${path}-wal`)).size;
    } catch {
      // removed
    }
    assertStrictEquals(walLeft, 0);
  });
});
