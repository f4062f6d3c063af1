/**
 * Cold start of `stepflow run` on the hello example against an empty `deno run` (issue 17, goal
 * 5: at most 5×), each a fresh process, interleaved, medians of wall time and of CPU time (user +
 * system, from the children's rusage in /proc/self/stat: robust to a loaded machine). With
 * `--bundle`, also the bundle (`deno task bundle` first: dist/stepflow.js).
 *
 * `--also DIR` adds the same contenders from another checkout (e.g. `main` exported to DIR, its
 * bundle built there), measured interleaved with these: before and after in one run.
 *
 * ```sh
 * deno run -A bench/cold_start.ts [--runs 15] [--bundle] [--also DIR]
 * ```
 * @module
 */
const ROOT = new URL("..", import.meta.url).pathname;
const args = Deno.args;
const RUNS = Number(args[args.indexOf("--runs") + 1] || 0) || 15;
const empty = await Deno.makeTempFile({ suffix: ".ts" });
await Deno.writeTextFile(empty, "");
const hello = [
  "run",
  "--flow",
  `${ROOT}examples/hello/flow.yaml`,
  "--input-json",
  '{"topic":"stepflow"}',
];
const contenders: [string, string[]][] = [
  ["empty deno run", ["run", "-A", empty]],
  ["stepflow run (main.ts)", ["run", "-A", `${ROOT}main.ts`, ...hello]],
];
if (args.includes("--bundle")) {
  contenders.push(["stepflow run (bundle)", ["run", "-A", `${ROOT}dist/stepflow.js`, ...hello]]);
}
const also = args.includes("--also") ? args[args.indexOf("--also") + 1].replace(/\/?$/, "/") : "";
if (also !== "") {
  contenders.push([`stepflow run (${also}main.ts)`, ["run", "-A", `${also}main.ts`, ...hello]]);
  if (args.includes("--bundle")) {
    contenders.push([
      `stepflow run (${also}dist/stepflow.js)`,
      ["run", "-A", `${also}dist/stepflow.js`, ...hello],
    ]);
  }
}

/** CPU ms of this process's waited-for children so far (cutime + cstime). */
function childrenCpuMs(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[13]) + Number(f[14])) * 10;
}

const wall: number[][] = contenders.map(() => []);
const cpu: number[][] = contenders.map(() => []);
for (let i = 0; i <= RUNS; i++) {
  for (const [k, [, a]] of contenders.entries()) {
    const c0 = childrenCpuMs();
    const t = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: a,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    const ms = performance.now() - t;
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    if (i === 0) continue; // warm-up: module cache, page cache
    wall[k].push(ms);
    cpu[k].push(childrenCpuMs() - c0);
  }
}
await Deno.remove(empty);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `cold start, medians of ${RUNS} interleaved runs (load ${
    Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
  })`,
);
console.log("| command | wall ms | ÷ empty | CPU ms | ÷ empty |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const [k, [name]] of contenders.entries()) {
  const w = median(wall[k]);
  const c = median(cpu[k]);
  console.log(
    `| ${name} | ${w.toFixed(0)} | ${(w / median(wall[0])).toFixed(1)}× | ${c.toFixed(0)} | ${
      (c / median(cpu[0])).toFixed(1)
    }× |`,
  );
}
