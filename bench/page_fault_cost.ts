/**
 * What a page fault costs on this machine (issue 17): the time to write one byte into each 4 KiB
 * page of a new 256 MiB buffer (each write faults its page in), against writing into the same
 * pages again (no fault). On a VM a fault can cost far more than on bare metal, and every page a
 * growing JavaScript heap takes is faulted in once: the figure says what a process's heap growth
 * costs (bench/map_stepservice.ts reports faults per item). Results in docs/performance.md.
 *
 * ```sh
 * deno run --allow-sys=loadavg bench/page_fault_cost.ts [--mib 256] [--rounds 5]
 * ```
 * @module
 */
function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}
const BYTES = Number(arg("mib", "256")) * 1024 * 1024;
const ROUNDS = Number(arg("rounds", "5"));
const PAGE = 4096;
const pages = BYTES / PAGE;

/** µs per page to write one byte into every page of `b`. */
function touch(b: Uint8Array, v: number): number {
  const t = performance.now();
  for (let i = 0; i < b.length; i += PAGE) b[i] = v;
  return (performance.now() - t) * 1000 / pages;
}

const fresh: number[] = [];
const again: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const b = new Uint8Array(BYTES); // new pages, mapped but not yet touched
  fresh.push(touch(b, 1));
  again.push(touch(b, 2));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `page fault (first write to a new 4 KiB page): median ${median(fresh).toFixed(2)} µs ` +
    `(rounds ${fresh.map((x) => x.toFixed(2)).join(", ")}); the same page written again: ` +
    `${median(again).toFixed(3)} µs (load ${Deno.loadavg()[0].toFixed(1)})`,
);
