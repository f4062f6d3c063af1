/**
 * The renderers: Mermaid and DOT escape every id and label (quotes, `<`, `&`, newlines, Mermaid's
 * keywords, control characters); DOT is valid Graphviz (checked by Graphviz itself, compiled to
 * WebAssembly); the SVG is well-formed, names every step, carries the CSS classes the web UI
 * uses, and is the same every time.
 * @module
 */
import { instance } from "@viz-js/viz";
import { assert, assertEquals, assertStrictEquals, assertStringIncludes } from "../_assert.ts";
import { loadFlowText } from "../../src/flow/load.ts";
import { buildFlowGraph, type FlowGraph } from "../../src/visualize/graph.ts";
import { mermaidIds, renderMermaid } from "../../src/visualize/mermaid.ts";
import { renderDot } from "../../src/visualize/dot.ts";
import { renderSvg } from "../../src/visualize/svg.ts";
import { renderFlow } from "../../src/visualize/render.ts";
import { statusClass, stepClass } from "../../src/visualize/labels.ts";
import { layoutGraph } from "../../src/visualize/layout.ts";
import { isotonic, simplify } from "../../src/visualize/layout_position.ts";
import { allElements, classesOf, parseXml, textOf } from "./_xml.ts";

/** Step ids that break naive renderers. */
const NASTY = [
  "end",
  "o",
  "x",
  'say "hi"',
  "<script>&amp;</script>",
  "two\nlines",
  "#35; not an entity",
  "pipe|bar",
  "back\\slash\\",
  "日本語",
  "ctl\u0001char",
  "graph",
  "subgraph",
  "style",
  "a b",
  "a_b",
];

function nastyFlow(): FlowGraph {
  const steps = NASTY.map((id, i) => ({
    id,
    component: i === 0 ? '/comp/"q"<&>' : "/x",
    input: i === 0
      ? { $from: { workflow: "input" }, path: 'a"b<c>&d' }
      : { $from: { step: NASTY[i - 1] } },
  }));
  const flow = {
    schema: "https://stepflow.org/schemas/v1/flow.json",
    name: 'flow "name" <&>\nline two',
    steps,
    output: { $from: { step: NASTY[NASTY.length - 1] } },
  };
  return buildFlowGraph(loadFlowText(JSON.stringify(flow), { format: "json" }));
}

Deno.test("renderMermaid: safe ids, quoted labels with entity codes, no raw quotes or angle brackets", () => {
  const g = nastyFlow();
  const text = renderMermaid(g);
  const ids = [...mermaidIds(g).values()];
  for (const id of ids) assert(/^n_[A-Za-z0-9_]+$/.test(id), `bad mermaid id ${id}`);
  assertStrictEquals(new Set(ids).size, ids.length);
  const lines = text.split("\n");
  assertStrictEquals(lines[0], "---");
  assertStrictEquals(lines[1], 'title: "flow \\"name\\" <&>\\nline two"');
  for (const line of lines.slice(4)) {
    if (line === "") continue;
    // a node: id, shape, one quoted label; an edge: id arrow |"label"| id
    const body = line.trim();
    const quoted = [...body.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
    for (const q of quoted) {
      assert(!/[<>]/.test(q.replaceAll("<br>", "")), `raw < or > in ${line}`);
      assert(!/&/.test(q), `raw & in ${line}`);
      assert(!/#(?![0-9]+;|[a-z]+;)/.test(q), `raw # in ${line}`);
    }
    assertStrictEquals((body.match(/"/g) ?? []).length % 2, 0, `unbalanced quotes: ${line}`);
  }
  assertStringIncludes(text, '["say #quot;hi#quot;<br>/x"]');
  assertStringIncludes(text, '["#lt;script#gt;#amp;amp;#lt;/script#gt;<br>/x"]');
  assertStringIncludes(text, '["two<br>lines<br>/x"]');
  assertStringIncludes(text, '["#35;35; not an entity<br>/x"]');
  assertStringIncludes(text, '["pipe#124;bar<br>/x"]');
  assertStringIncludes(text, '["back#92;slash#92;<br>/x"]');
  assertStringIncludes(text, '["ctl#92;u0001char<br>/x"]');
  // a path without `$` is one key (stepflow 0.8), shown in brackets
  assertStringIncludes(text, '|"[#quot;a#92;#quot;b#lt;c#gt;#amp;d#quot;]"|');
  assert(!/^\s*(end|graph|subgraph|style)\b/m.test(text.split("flowchart TD")[1]));
});

Deno.test("renderDot: quoted ids, escaped HTML labels; Graphviz parses it and keeps every node", async () => {
  const g = nastyFlow();
  const dot = renderDot(g);
  assertStringIncludes(dot, '"step:say \\"hi\\""');
  assertStringIncludes(dot, '"step:back\\\\slash\\\\"');
  assertStringIncludes(dot, '"step:two\\nlines"');
  assertStringIncludes(dot, "<B>&lt;script&gt;&amp;amp;&lt;/script&gt;</B>");
  assertStringIncludes(dot, "/comp/&quot;q&quot;&lt;&amp;&gt;");
  assertStringIncludes(dot, '[label=" [\\"a\\\\\\"b<c>&d\\"] "]');
  const viz = await instance();
  const result = viz.render(dot, { format: "json" });
  assertStrictEquals(result.status, "success", JSON.stringify(result.errors));
  const parsed = JSON.parse(result.output!) as { objects: { name: string }[] };
  assertStrictEquals(parsed.objects.length, g.nodes.length);
  const svg = viz.renderString(renderDot(g, { cssClasses: true }), { format: "svg" });
  assertStringIncludes(svg, `class="node step ${stepClass("a b").replace("-", "&#45;")}"`);
});

Deno.test("renderSvg: well-formed, every step named, classes and data attributes for the web UI", () => {
  const g = nastyFlow();
  const svg = renderSvg(g, { stepStatus: { end: "completed", "a b": "running now" } });
  const root = parseXml(svg);
  assertStrictEquals(root.name, "svg");
  const groups = allElements(root).filter((e) => classesOf(e).includes("step"));
  assertStrictEquals(groups.length, NASTY.length);
  for (const [i, id] of NASTY.entries()) {
    const el = groups[i];
    const shown = id.replaceAll("\u0001", "\\u0001");
    assertStrictEquals(el.attrs["data-step-id"], shown);
    assert(classesOf(el).includes(stepClass(id)), `${stepClass(id)} in ${el.attrs.class}`);
    for (const line of shown.split("\n")) {
      assertStringIncludes(textOf(el), line, `step ${JSON.stringify(id)} named`);
    }
  }
  assert(classesOf(groups[0]).includes("status-completed"));
  assert(classesOf(groups[NASTY.indexOf("a b")]).includes(statusClass("running now")));
  assertStrictEquals(statusClass("running now"), "status-running_20_now");
  assertStrictEquals(stepClass("a_b"), "step-a_5f_b");
  assertStrictEquals(stepClass("a b"), "step-a_20_b");
  assertStrictEquals(stepClass("日"), "step-_65e5_");
  assertEquals(classesOf(root), ["flow-graph"]);
  assertStrictEquals(renderSvg(g), renderSvg(g), "deterministic");
});

Deno.test("layout: nodes never overlap, and everything lies inside the picture", async () => {
  const hello = loadFlowText(
    await Deno.readTextFile(new URL("../../examples/hello/flow.yaml", import.meta.url)),
  );
  const graphs = [
    nastyFlow(),
    buildFlowGraph(hello),
    buildFlowGraph(hello, { expandNested: true }),
  ];
  for (const g of graphs) {
    const layout = layoutGraph(g);
    const boxes = [...layout.nodes];
    for (const a of boxes) {
      assert(a.x - a.width / 2 >= 0 && a.x + a.width / 2 <= layout.width, `${a.node.id} inside`);
      assert(a.y - a.height / 2 >= 0 && a.y + a.height / 2 <= layout.height, `${a.node.id} inside`);
      for (const b of boxes) {
        if (a === b) continue;
        const apart = Math.abs(a.x - b.x) >= (a.width + b.width) / 2 ||
          Math.abs(a.y - b.y) >= (a.height + b.height) / 2;
        assert(apart, `${a.node.id} overlaps ${b.node.id}`);
      }
    }
    for (const e of layout.edges) {
      for (const p of e.points) {
        assert(p.x >= 0 && p.x <= layout.width && p.y >= 0 && p.y <= layout.height);
      }
    }
    for (const c of layout.clusters) {
      // a nested flow's nodes lie inside its box
      const inside = layout.nodes.filter((n) => n.node.cluster === c.cluster.id);
      assert(inside.length > 0);
      for (const n of inside) {
        assert(Math.abs(n.x - c.x) + n.width / 2 <= c.width / 2, `${n.node.id} in its cluster`);
        assert(Math.abs(n.y - c.y) + n.height / 2 <= c.height / 2, `${n.node.id} in its cluster`);
      }
    }
  }
});

Deno.test("layout helpers: isotonic regression and polyline simplification", () => {
  const y = isotonic(new Float64Array([1, 3, 2, 4, 0]), new Float64Array([1, 1, 1, 1, 1]));
  assertEquals([...y], [1, 2.25, 2.25, 2.25, 2.25]);
  const pts = [{ x: 0, y: 0 }, { x: 0.5, y: 5 }, { x: 0, y: 10 }, { x: 10, y: 20 }];
  assertEquals(simplify(pts, 1), [{ x: 0, y: 0 }, { x: 0, y: 10 }, { x: 10, y: 20 }]);
});

Deno.test("renderFlow: one call for each format; unknown formats are a TypeError", () => {
  const flow = loadFlowText(
    "schema: https://stepflow.org/schemas/v1/flow.json\nsteps: [{id: a, component: /x}]\n" +
      "output: {$from: {step: a}}\n",
  );
  assert(renderFlow(flow, { format: "mermaid" }).startsWith("flowchart TD\n"));
  assert(renderFlow(flow, { format: "dot" }).startsWith('digraph "flow" {\n'));
  assert(renderFlow(flow).startsWith("<svg "));
  assert(!renderFlow(flow, { format: "mermaid", details: false }).includes("/x"));
  let err: unknown;
  try {
    // deno-lint-ignore no-explicit-any
    renderFlow(flow, { format: "png" as any });
  } catch (e) {
    err = e;
  }
  assert(err instanceof TypeError);
});
