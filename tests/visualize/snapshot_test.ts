/**
 * Snapshots: the Mermaid and DOT of every example flow (examples/<name>/flow.yaml) and of every
 * conformance flow (read from ../shared/conformance/stepflow-0.8, never copied) are compared with
 * tests/fixtures/visualize/; the SVG of each is well-formed and names every step.
 *
 * To accept new output: `UPDATE_SNAPSHOTS=1 deno test -A tests/visualize/snapshot_test.ts`.
 * @module
 */
import { instance } from "@viz-js/viz";
import { assert, assertStrictEquals, REPO_ROOT } from "../_assert.ts";
import { CONFORMANCE_DIR, conformanceFlows, conformanceTest } from "../_conformance.ts";
import { loadFlowFile } from "../../src/flow/load.ts";
import { buildFlowGraph } from "../../src/visualize/graph.ts";
import { renderMermaid } from "../../src/visualize/mermaid.ts";
import { renderDot } from "../../src/visualize/dot.ts";
import { renderSvg } from "../../src/visualize/svg.ts";
import { allElements, classesOf, parseXml, textOf } from "./_xml.ts";

const SNAPSHOTS = `${REPO_ROOT}/tests/fixtures/visualize`;
const UPDATE = Deno.env.get("UPDATE_SNAPSHOTS") === "1";

/** Compares `actual` with the snapshot file (or writes it with UPDATE_SNAPSHOTS=1). */
async function snapshot(file: string, actual: string): Promise<void> {
  const path = `${SNAPSHOTS}/${file}`;
  if (UPDATE) {
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, actual);
    return;
  }
  let expected: string;
  try {
    expected = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `no snapshot ${file}: run UPDATE_SNAPSHOTS=1 deno test -A ${import.meta.url}`,
      );
    }
    throw e;
  }
  if (actual !== expected) {
    const a = actual.split("\n");
    const b = expected.split("\n");
    const line = a.findIndex((l, i) => l !== b[i]);
    throw new Error(
      `${file} differs at line ${line + 1}:\n  expected: ${b[line]}\n  actual:   ${a[line]}\n` +
        "(UPDATE_SNAPSHOTS=1 accepts the new output)",
    );
  }
}

/** Checks one flow: Mermaid and DOT snapshots, DOT accepted by Graphviz, SVG well-formed. */
async function checkFlow(path: string, name: string): Promise<void> {
  const loaded = await loadFlowFile(path);
  const graph = buildFlowGraph(loaded);
  await snapshot(`${name}.mmd`, renderMermaid(graph));
  await snapshot(`${name}.dot`, renderDot(graph));
  const expanded = buildFlowGraph(loaded, { expandNested: true });
  if (expanded.clusters.length > 0) {
    await snapshot(`${name}.expanded.mmd`, renderMermaid(expanded));
    await snapshot(`${name}.expanded.dot`, renderDot(expanded));
  }
  const viz = await instance();
  for (const g of [graph, expanded]) {
    const r = viz.render(renderDot(g), { format: "dot" });
    assertStrictEquals(r.status, "success", `${name}: ${JSON.stringify(r.errors)}`);
    const svg = parseXml(renderSvg(g));
    const steps = allElements(svg).filter((e) => classesOf(e).includes("step"));
    const ids = g.nodes.filter((n) => n.kind === "step").map((n) => n.stepId!);
    assertStrictEquals(steps.length, ids.length, `${name}: one node per step`);
    steps.forEach((el, i) => {
      assertStrictEquals(el.attrs["data-step-id"], ids[i]);
      assert(textOf(el).includes(ids[i]), `${name}: the SVG names step ${ids[i]}`);
    });
  }
}

const examples: string[] = [];
for await (const e of Deno.readDir(`${REPO_ROOT}/examples`)) {
  if (e.isDirectory) examples.push(e.name);
}
examples.sort();

Deno.test("visualize snapshots: every example flow", async () => {
  assert(examples.length >= 4, `found ${examples.length} examples`);
  for (const name of examples) {
    await checkFlow(`${REPO_ROOT}/examples/${name}/flow.yaml`, `examples/${name}`);
  }
});

conformanceTest("visualize snapshots: every stepflow 0.8 conformance flow", async () => {
  const root = (await Deno.realPath(CONFORMANCE_DIR)).replace(/\/$/, "");
  for (const file of await conformanceFlows()) {
    const rel = (await Deno.realPath(file)).slice(root.length + 1).replace(/\.ya?ml$/, "");
    await checkFlow(file, `conformance/${rel}`);
  }
});
