/**
 * The import graph of the project's source (`src/`, `sdk/`, `main.ts`, `mod.ts`), read from
 * Deno's own module graph (`deno info --json`), and the checks of docs/architecture.md's layer
 * table: no import cycles, and no module importing from a layer it may not use.
 *
 * Run it on its own to see the graph's problems:
 *
 *   deno run -A tests/architecture/_import_graph.ts
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** One edge: `from` imports `to` (both paths relative to the project root). */
export interface ImportEdge {
  from: string;
  to: string;
  /** True when only types are imported (`import type`). */
  typeOnly: boolean;
}

/** Every `.ts` file under `dir` (relative to the root), sorted. */
async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(ROOT + rel)) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/** The project's source modules and their imports among themselves (npm and node: left out). */
export async function importGraph(): Promise<{ files: string[]; edges: ImportEdge[] }> {
  const files = [
    "main.ts",
    "mod.ts",
    ...await sourceFiles("src"),
    ...await sourceFiles("sdk"),
  ];
  const dir = await Deno.makeTempDir({ prefix: "stepflow_graph_" });
  try {
    const entry = `${dir}/all.ts`;
    await Deno.writeTextFile(
      entry,
      files.map((f) => `import "${new URL(f, "file://" + ROOT).href}";`).join("\n") + "\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", ROOT + "deno.json", entry],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`deno info failed: ${new TextDecoder().decode(out.stderr)}`);
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: {
        specifier: string;
        dependencies?: {
          code?: { specifier: string };
          type?: { specifier: string };
        }[];
      }[];
    };
    const rootUrl = "file://" + ROOT;
    const rel = (s: string) => s.startsWith(rootUrl) ? s.slice(rootUrl.length) : undefined;
    const edges: ImportEdge[] = [];
    for (const m of info.modules) {
      const from = rel(m.specifier);
      if (from === undefined || !files.includes(from)) continue;
      for (const d of m.dependencies ?? []) {
        const target = d.code?.specifier ?? d.type?.specifier;
        const to = target === undefined ? undefined : rel(target);
        if (to === undefined || !files.includes(to)) continue;
        edges.push({ from, to, typeOnly: d.code === undefined });
      }
    }
    return { files, edges };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The import cycles (strongly connected components of more than one file, or a self-import). */
export function importCycles(files: string[], edges: ImportEdge[]): string[][] {
  const next = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const e of edges) next.get(e.from)!.push(e.to);
  // Tarjan's algorithm
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return out;
}

/** One row of the layer table: a layer, the paths it holds, the layers it may import. */
export interface Layer {
  name: string;
  /** Folders (ending in `/`) or files, relative to the root. */
  paths: string[];
  /** Layers this one may import (itself always). */
  mayImport: string[];
}

/**
 * Reads the layer table of docs/architecture.md: the Markdown table under the heading
 * `## Layers`, with columns `layer | holds | may import`; paths and layer names in backticks.
 */
export async function layerTable(): Promise<Layer[]> {
  const text = await Deno.readTextFile(ROOT + "docs/architecture.md");
  const start = text.indexOf("\n## Layers");
  if (start < 0) throw new Error("docs/architecture.md has no '## Layers' section");
  const lines = text.slice(start + 1).split("\n").slice(1);
  const rows: Layer[] = [];
  let inTable = false;
  for (const line of lines) {
    if (line.startsWith("## ")) break;
    if (!line.startsWith("|")) {
      if (inTable) break;
      continue;
    }
    inTable = true;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length < 3 || /^-+$/.test(cells[0].replaceAll(":", "")) || cells[0] === "layer") {
      continue;
    }
    const ticks = (s: string) => [...s.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    const [name] = ticks(cells[0]);
    rows.push({ name, paths: ticks(cells[1]), mayImport: ticks(cells[2]) });
  }
  if (rows.length === 0) throw new Error("docs/architecture.md: the layer table is empty");
  return rows;
}

/** The layer of `file`: the row with the longest matching path; undefined when none holds it. */
export function layerOf(file: string, layers: Layer[]): Layer | undefined {
  let best: Layer | undefined;
  let bestLength = -1;
  for (const l of layers) {
    for (const p of l.paths) {
      const hit = p.endsWith("/") ? file.startsWith(p) : file === p;
      if (hit && p.length > bestLength) {
        best = l;
        bestLength = p.length;
      }
    }
  }
  return best;
}

/** Imports a layer may not make (`from` imports a layer not in its row), and files in no layer. */
export function layerViolations(
  files: string[],
  edges: ImportEdge[],
  layers: Layer[],
): { upward: ImportEdge[]; unplaced: string[] } {
  const unplaced = files.filter((f) => layerOf(f, layers) === undefined);
  const upward = edges.filter((e) => {
    const a = layerOf(e.from, layers);
    const b = layerOf(e.to, layers);
    if (!a || !b || a === b) return false;
    return !a.mayImport.includes(b.name);
  });
  return { upward, unplaced };
}

if (import.meta.main) {
  const { files, edges } = await importGraph();
  const cycles = importCycles(files, edges);
  console.log(`${files.length} files, ${edges.length} imports, ${cycles.length} cycles`);
  for (const c of cycles) console.log(`  cycle: ${c.join(" ")}`);
  let layers: Layer[] | undefined;
  try {
    layers = await layerTable();
  } catch (e) {
    console.log(`no layer table: ${(e as Error).message}`);
  }
  if (layers) {
    const { upward, unplaced } = layerViolations(files, edges, layers);
    console.log(`${upward.length} imports against the layer table`);
    for (const e of upward) {
      console.log(
        `  ${e.from} (${layerOf(e.from, layers)!.name}) -> ${e.to} (${
          layerOf(e.to, layers)!.name
        })${e.typeOnly ? " [type]" : ""}`,
      );
    }
    for (const f of unplaced) console.log(`  in no layer: ${f}`);
  }
}
