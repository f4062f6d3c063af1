/**
 * One engine, many rounds of the same `/builtin/map` over a stdio step service (the SDK worker's
 * `/echo`, tests/fixtures/workers/sdk_worker.ts; 10,000 items, `max_concurrency: 16`, a one-step
 * item flow): wall and CPU µs per item of the engine process, page faults per item, and the heap
 * after each round. The engine's in-memory store keeps the item runs of the last runs (its default
 * retention), so the heap grows for the first rounds and then holds: `--skip N` leaves the first
 * rounds out of the medians (a long-lived process's steady state); `-v` prints every round.
 * The A/B tool of issue 17's passes (docs/performance.md): run two builds' copies interleaved.
 *
 * ```sh
 * deno run -A bench/map_rounds.ts [--items 10000] [--rounds 12] [--skip 2] [--concurrency 16] [-v]
 * ```
 * @module
 */
import process from "node:process";
import { mapEngine, mapFlow } from "./_map_worker.ts";

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}
const ITEMS = Number(arg("items", "10000"));
const ROUNDS = Number(arg("rounds", "12"));
const SKIP = Number(arg("skip", "2"));
const CONC = Number(arg("concurrency", "16"));
const VERBOSE = Deno.args.includes("-v");

const engine = await mapEngine();
const flow = mapFlow(CONC);
const items = Array.from({ length: ITEMS }, (_, i) => ({ x: i }));

/** Minor page faults of this process so far (Linux; 0 elsewhere). */
function minorFaults(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ")[7]);
  } catch {
    return 0;
  }
}

const walls: number[] = [], cpus: number[] = [], faults: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const cpu0 = process.cpuUsage();
  const pf0 = minorFaults();
  const t0 = performance.now();
  const res = await engine.run(flow, { items });
  const wall = (performance.now() - t0) * 1000 / ITEMS;
  const cpu0d = process.cpuUsage(cpu0);
  const cpu = (cpu0d.user + cpu0d.system) / ITEMS;
  const pf = (minorFaults() - pf0) / ITEMS;
  if (res.outcome !== "success") {
    throw new Error(`round ${r}: ${JSON.stringify(res).slice(0, 400)}`);
  }
  if (r >= SKIP) {
    walls.push(wall);
    cpus.push(cpu);
    faults.push(pf);
  }
  if (VERBOSE) {
    const m = Deno.memoryUsage();
    console.log(
      `round ${r}: wall ${wall.toFixed(2)} µs/item, cpu ${cpu.toFixed(2)} µs/item, ` +
        `faults ${pf.toFixed(3)}/item, heap ${(m.heapTotal / 2 ** 20).toFixed(0)} MB, ` +
        `rss ${(m.rss / 2 ** 20).toFixed(0)} MB`,
    );
  }
}
await engine.close();
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(
  `map of ${ITEMS} items over a stdio step service, rounds ${SKIP}-${ROUNDS - 1}: median wall ` +
    `${median(walls).toFixed(2)} µs/item (min ${Math.min(...walls).toFixed(2)}), cpu ` +
    `${median(cpus).toFixed(2)} µs/item, faults ${median(faults).toFixed(3)}/item (load ` +
    `${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")})`,
);
