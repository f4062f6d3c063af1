/**
 * The SQLite database file deleted or replaced while a store has it open: SQLite in WAL mode goes
 * on writing into the unlinked file without an error, so `stepflow serve` answered every later
 * run `completed` and lost them all when it stopped. Now each commit checks that the path still
 * names the file opened, and fails with 507 naming the cause and what to do. A damaged file: a
 * read was a bare `database disk image is malformed` (the service's 500 said no more); it now
 * names the database and how to rescue it. `/health` said healthy meanwhile; it now answers 503
 * saying so.
 * @module
 */
import {
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  withTempDir,
} from "../_assert.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { type RunRecord, StoreError } from "../../src/state/store.ts";
import { startServer, storeFlow, THREE_STEPS } from "../server/_server.ts";

function run(id: string): RunRecord {
  return {
    runId: id,
    flowId: "f".repeat(64),
    status: "running",
    input: { id },
    createdAt: new Date().toISOString(),
  };
}

for (const worker of [false, true]) {
  for (const how of ["deleted", "replaced"] as const) {
    const where = worker ? " (commits in a worker)" : "";
    Deno.test(`a commit after the database file was ${how} fails naming it${where}`, async () => {
      await withTempDir(async (dir) => {
        const path = `${dir}/runs.db`;
        const s = SqliteStateStore.open(`sqlite:${path}`);
        try {
          if (worker) await s.useCommitWorker();
          s.createRun(run("before"));
          await s.flush();
          for (const suffix of ["", "-wal", "-shm"]) {
            await Deno.remove(path + suffix).catch(() => {});
          }
          if (how === "replaced") await Deno.writeTextFile(path, "");
          s.createRun(run("after"));
          const e = await assertRejects(() => s.flush(), StoreError);
          assertStringIncludes(e.message, `SQLite database '${path}'`);
          assertStringIncludes(e.message, `the database file was ${how} while this process had it`);
          assertStringIncludes(e.message, "restart the process");
        } finally {
          await s.close();
        }
      });
    });
  }
}

for (const worker of [false, true]) {
  for (const how of ["emptied", "overwritten", "cut short"] as const) {
    const where = worker ? " (commits in a worker)" : "";
    Deno.test(`a commit after the database file was ${how} in place fails naming it${where}`, async () => {
      await withTempDir(async (dir) => {
        const path = `${dir}/runs.db`;
        const first = SqliteStateStore.open(`sqlite:${path}`);
        for (let i = 0; i < 300; i++) first.createRun(run(`r${i}`));
        await first.close(); // checkpointed into the file: many pages
        const s = SqliteStateStore.open(`sqlite:${path}`);
        try {
          if (worker) await s.useCommitWorker();
          s.createRun(run("before"));
          await s.flush();
          // the same file (same inode), its content gone: before, SQLite wrote on into the WAL
          // and every commit succeeded, and its checkpoints left a malformed database
          const f = await Deno.open(path, { write: true });
          try {
            // cut short by its last page (was not caught: every commit succeeded, its
            // checkpoints left a database with a page of zeros)
            if (how === "emptied") await f.truncate(0);
            else if (how === "cut short") await f.truncate((await Deno.stat(path)).size - 4096);
            else await f.write(new TextEncoder().encode("a backup tool wrote here".repeat(10)));
          } finally {
            f.close();
          }
          s.createRun(run("after"));
          const e = await assertRejects(() => s.flush(), StoreError);
          assertStringIncludes(e.message, `SQLite database '${path}'`);
          assertStringIncludes(e.message, "the database file was truncated or overwritten");
          assertStringIncludes(
            e.message,
            how === "emptied"
              ? "(it is empty)"
              : how === "cut short"
              ? "bytes, its header says "
              : "its header is no longer SQLite's",
          );
          assertStringIncludes(e.message, "restore the file from a backup");
        } finally {
          await s.close().catch(() => {});
        }
      });
    });
  }
}

Deno.test("stepflow serve: runs after its database file was deleted fail with 507 instead of completing into the deleted file", () =>
  withTempDir(async (dir) => {
    const s = await startServer(dir, { args: ["--store", "state.db"] });
    try {
      const flowId = await storeFlow(s, THREE_STEPS);
      const ok = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "kept" } });
      assertStrictEquals(ok.body.status, "completed");
      for (const suffix of ["", "-wal", "-shm"]) {
        await Deno.remove(`${dir}/state.db${suffix}`).catch(() => {});
      }
      const lost = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "lost" } });
      assertStrictEquals(lost.status, 200);
      assertStrictEquals(lost.body.status, "failed");
      assertStrictEquals(lost.body.result.error.code, 507);
      assertStringIncludes(lost.body.result.error.message, "the database file was deleted");
      // the service goes on answering, and its health says what is wrong and what to do
      // (it answered 200 healthy before)
      for (const path of ["/health", "/api/v1/health"]) {
        const h = await s.call("GET", path);
        assertStrictEquals(h.status, 503, JSON.stringify(h.body));
        assertStrictEquals(h.body.status, "unhealthy");
        assertStrictEquals(h.body.store.healthy, false);
        assertStrictEquals(h.body.store.database, `${dir}/state.db`);
        assertStringIncludes(h.body.message, "the database file was deleted");
        assertStringIncludes(h.body.message, "restart the process");
      }
    } finally {
      assertStrictEquals(await s.stop(), 0);
    }
    assertStringIncludes(s.stderr(), "the database file was deleted");
  }));

Deno.test("a read of a damaged database file names the database and says how to rescue it", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    const first = SqliteStateStore.open(`sqlite:${path}`);
    for (let i = 0; i < 300; i++) first.createRun(run(`r${i}`));
    await first.close(); // checkpointed into the file
    const s = SqliteStateStore.open(`sqlite:${path}`);
    try {
      const f = await Deno.open(path, { write: true });
      try {
        const size = (await f.stat()).size;
        const junk = new Uint8Array(256).fill(0xde);
        for (let off = 4096; off < size; off += 4096) {
          await f.seek(off + 100, Deno.SeekMode.Start);
          await f.write(junk);
        }
      } finally {
        f.close();
      }
      const e = await assertRejects(() => s.listRuns({ limit: 1000 }), StoreError);
      assertStringIncludes(e.message, `cannot read run state in SQLite database '${path}'`);
      assertStringIncludes(e.message, "malformed");
      assertStringIncludes(e.message, ".recover");
    } finally {
      await s.close().catch(() => {});
    }
  });
});

for (const worker of [false, true]) {
  const where = worker ? " (commits in a worker)" : "";
  Deno.test(`a file growing under concurrent checkpoints is never taken for one cut short${where}`, async () => {
    // a checkpoint writes page 1 (the new size) before the pages past the file's end: commits
    // meanwhile see a file shorter than its header says, and must not fail (the WAL index says
    // a checkpoint is under way)
    await withTempDir(async (dir) => {
      const path = `${dir}/runs.db`;
      const s = SqliteStateStore.open(`sqlite:${path}`);
      try {
        if (worker) await s.useCommitWorker();
        const pad = "x".repeat(2000);
        let n = 0;
        for (let batch = 0; batch < 300; batch++) {
          for (let i = 0; i < 50; i++) {
            s.createRun({ ...run(`r${n++}`), input: { pad, n } });
          }
          await s.flush();
        }
        assertStrictEquals((await s.listRuns({ limit: 1 })).length, 1);
      } finally {
        await s.close();
      }
    });
  });
}

for (const worker of [false, true]) {
  const where = worker ? " (commits in a worker)" : "";
  Deno.test(`reading the database file's header keeps this process's locks: another process closing does not delete the WAL${where}`, async () => {
    // Before: the header was read with a descriptor opened and closed at each check, and closing
    // any descriptor of a file drops every POSIX lock the process holds on it, SQLite's shared
    // lock included: another process closing its connection then took the file as its last user,
    // deleted the WAL, and the commits after went into the deleted WAL (lost: another reader saw
    // 1 run of 2).
    await withTempDir(async (dir) => {
      const path = `${dir}/runs.db`;
      const s = SqliteStateStore.open(`sqlite:${path}`);
      try {
        if (worker) await s.useCommitWorker();
        s.createRun(run("first"));
        await s.flush(); // the first commit reads the header
        // another SQLite client (Python's: it checkpoints on close, and deletes the WAL when it
        // finds itself the last user; the sqlite3 shell, a backup script do the same)
        const other = await new Deno.Command("python3", {
          args: [
            "-c",
            `import sqlite3
d = sqlite3.connect(${JSON.stringify(path)})
d.execute("SELECT count(*) FROM runs").fetchone()
d.close()`,
          ],
        }).output();
        assertStrictEquals(other.code, 0, new TextDecoder().decode(other.stderr));
        const wal = await Deno.stat(`${path}-wal`).then(() => true, () => false);
        assertStrictEquals(wal, true, "the other process deleted the WAL this one writes into");
        s.createRun(run("second"));
        await s.flush();
        // what this process commits is what another reads
        const check = await new Deno.Command("python3", {
          args: [
            "-c",
            `import sqlite3
d = sqlite3.connect(${JSON.stringify(path)})
print(d.execute("SELECT count(*) FROM runs").fetchone()[0])
d.close()`,
          ],
        }).output();
        assertStrictEquals(new TextDecoder().decode(check.stdout).trim(), "2");
      } finally {
        await s.close();
      }
    });
  });
}
