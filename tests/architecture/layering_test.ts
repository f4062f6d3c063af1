/**
 * The layering of docs/architecture.md holds in the code: no import cycles in `src/` and `sdk/`,
 * and no module imports from a layer its row of the table does not list. Read from Deno's own
 * module graph (`deno info --json`), type-only imports included.
 * @module
 */
import { assert } from "../_assert.ts";
import {
  importCycles,
  importGraph,
  layerOf,
  layerTable,
  layerViolations,
} from "./_import_graph.ts";

Deno.test("src/ and sdk/ have no import cycles", async () => {
  const { files, edges } = await importGraph();
  assert(files.length > 50, `only ${files.length} files found`);
  const cycles = importCycles(files, edges);
  assert(cycles.length === 0, `import cycles:\n${cycles.map((c) => c.join(" -> ")).join("\n")}`);
});

Deno.test("every module imports only from its own layer and the layers below it", async () => {
  const { files, edges } = await importGraph();
  const layers = await layerTable();
  const { upward, unplaced } = layerViolations(files, edges, layers);
  assert(
    unplaced.length === 0,
    `files in no layer of docs/architecture.md: ${unplaced.join(", ")}`,
  );
  assert(
    upward.length === 0,
    `imports against the layer table:\n${
      upward.map((e) =>
        `${e.from} (${layerOf(e.from, layers)!.name}) -> ${e.to} (${layerOf(e.to, layers)!.name})`
      ).join("\n")
    }`,
  );
});

Deno.test("the layer table lists only layers that exist, each importing only lower rows", async () => {
  const layers = await layerTable();
  const names = layers.map((l) => l.name);
  layers.forEach((l, i) => {
    for (const m of l.mayImport) {
      assert(names.includes(m), `layer '${l.name}' may import unknown layer '${m}'`);
      assert(names.indexOf(m) < i, `layer '${l.name}' may import '${m}', which is not below it`);
    }
  });
});
