/**
 * What a WAL checkpoint of 10,000 pages (SQLite's automatic one in `checkpoint: "auto"`) costs the
 * thread that runs it: the time the event loop would stand still, compared with handing it to the
 * checkpoint worker (src/state/sqlite_checkpoint.ts: the event loop only posts a message).
 *
 * ```sh
 * deno run -A bench/sqlite_checkpoint_cost.ts
 * ```
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import process from "node:process";
import { Checkpointer } from "../src/state/sqlite_checkpoint.ts";

const dir = await Deno.makeTempDir({ prefix: "stepflow-ckpt-" });
const path = `${dir}/c.db`;
const db = new DatabaseSync(path);
db.exec(
  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0; " +
    "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
);
const insert = db.prepare("INSERT INTO t(v) VALUES (?)");
const row = "x".repeat(3900); // about a page per row

function fillWal(pages: number) {
  for (let i = 0; i < pages / 100; i++) {
    db.exec("BEGIN");
    for (let k = 0; k < 100; k++) insert.run(row);
    db.exec("COMMIT");
  }
}

const onLoop: number[] = [];
const onLoopCpu: number[] = [];
for (let rep = 0; rep < 5; rep++) {
  fillWal(10_000);
  const t = performance.now();
  const c0 = process.cpuUsage();
  const r = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as { log: number };
  const c = process.cpuUsage(c0);
  onLoop.push(performance.now() - t);
  onLoopCpu.push((c.user + c.system) / 1000);
  console.error(`on the event loop: ${onLoop.at(-1)!.toFixed(1)} ms (${r.log} frames)`);
  db.exec("DELETE FROM t");
}

const worker = new Checkpointer(path, 5000, (m) => console.error(m));
const posted: number[] = [];
const inWorker: number[] = [];
for (let rep = 0; rep < 5; rep++) {
  fillWal(10_000);
  const t = performance.now();
  const c0 = process.cpuUsage();
  const done = worker.checkpointNow();
  const c = process.cpuUsage(c0);
  posted.push((c.user + c.system) / 1000);
  const r = await done;
  inWorker.push(performance.now() - t);
  console.error(
    `worker: event loop CPU ${posted.at(-1)!.toFixed(2)} ms, checkpoint done after ${
      inWorker.at(-1)!.toFixed(1)
    } ms (${r.log} frames)`,
  );
  db.exec("DELETE FROM t");
}
await worker.close();
db.close();
await Deno.remove(dir, { recursive: true });
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1].toFixed(1);
console.log(
  `| checkpoint of 10,000 pages | on the event loop: median ${med(onLoop)} ms (CPU ${
    med(onLoopCpu)
  } ms), max ${Math.max(...onLoop).toFixed(1)} ms | worker: event loop CPU ${
    med(posted)
  } ms (the checkpoint takes ${med(inWorker)} ms on its thread) |`,
);
