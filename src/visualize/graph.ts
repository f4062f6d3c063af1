/**
 * The graph of a flow, independent of how it is drawn: nodes (the flow input, its steps, the flow
 * output, the variables, nested flows, undefined steps), edges (the data references of input
 * templates, `skipIf` and `onError.defaultValue`) and clusters (expanded nested flows). The
 * renderers (`mermaid.ts`, `dot.ts`, `svg.ts`) and the web UI draw this model.
 *
 * Built from the flow model and the reference analysis of `src/flow/template.ts` only: the graph
 * is what the flow file says, not what a run did. Output is deterministic: nodes and edges come in
 * file order, so the same flow always gives the same graph.
 * @module
 */
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import type { LoadedFlow } from "../flow/load.ts";
import { type Flow, FlowSchema, type Step } from "../flow/model.ts";
import { jsonPath } from "../core/diagnostics.ts";
import { type CompiledRef, pathText } from "../flow/template.ts";
import { findNestedFlows, type Path, templateRefs } from "./graph_refs.ts";

/** What a node stands for. */
export type GraphNodeKind =
  | "input"
  | "output"
  | "variables"
  | "step"
  | "nested_flow"
  | "missing_step";

/** One node of a {@linkcode FlowGraph}. */
export interface GraphNode {
  /**
   * Unique within the graph and stable for a given flow: `input`, `output`, `variables`,
   * `step:<id>`, `missing:<id>`, `nested:<stepId>:<path in the step's input>`; inside an expanded
   * nested flow, prefixed with its cluster id and `/`. (A repeated step id gets `#<index>`.)
   */
  id: string;
  kind: GraphNodeKind;
  /** The step id (steps and undefined steps); the nested flow's name; else the kind. */
  label: string;
  /** `step` and `missing_step`: the step id as written in the flow. */
  stepId?: string;
  /** `step`: the component path, e.g. `/builtin/map`. */
  component?: string;
  /** `step`: the plugin its route sends the component to, when a resolver was given. */
  plugin?: string;
  /** `step`: `mustExecute: true`. */
  mustExecute?: boolean;
  /**
   * `step`: in the required set (read by the output or a `mustExecute` step, or a dependency of
   * one; stepflow 0.8 §1.6). A step outside it never runs.
   */
  required?: boolean;
  /** `step`: has a `skipIf` condition. */
  skipIf?: boolean;
  /** `step`: its `onError.action`, when not the default `fail`. */
  onError?: "skip" | "useDefault" | "retry";
  /** `nested_flow`: the number of steps of the nested flow (0 when it is not a valid flow). */
  stepCount?: number;
  /** `nested_flow`: false when the value is not a valid flow. */
  valid?: boolean;
  /** The id of the cluster (expanded nested flow) the node is drawn in. */
  cluster?: string;
}

/** What an edge carries. */
export type GraphEdgeKind = "data" | "skip_if" | "error_default" | "nested_flow";

/** One edge: `from` is read by (or, for `nested_flow`, is run by) `to`. */
export interface GraphEdge {
  from: string;
  to: string;
  /**
   * `data`: references in the step's `input` (or the flow's `output`); `skip_if`: references in
   * `skipIf`; `error_default`: references in `onError.defaultValue` (not a dependency: stepflow 0.8
   * does not wait for them); `nested_flow`: the nested flow sits in the step's input.
   */
  kind: GraphEdgeKind;
  /**
   * True for a condition: a `skipIf` reference, or a reference with `onSkip: {action:
   * useDefault}` (the step still runs when the source is skipped). Drawn dashed.
   */
  conditional: boolean;
  /**
   * Distinct, in first-seen order. `data`/`skip_if`/`error_default`: the paths read from the
   * source (`$` = its whole value; from `variables`: `$.<name>` then the path); `nested_flow`:
   * where the flow sits in the step's input (`$.workflow`).
   */
  paths: string[];
}

/** An expanded nested flow, drawn as a box around its own nodes. */
export interface GraphCluster {
  /** The id its collapsed node would have (`nested:<stepId>:<path>`), prefixed when nested. */
  id: string;
  /** The nested flow's name, or `nested flow`. */
  label: string;
  /** The node id of the step whose input holds the flow. */
  step: string;
  /** The enclosing cluster, for a flow nested in a nested flow. */
  parent?: string;
}

/** The graph of a flow. */
export interface FlowGraph {
  /** The flow's `name`. */
  name?: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Empty unless nested flows are expanded. */
  clusters: GraphCluster[];
  /**
   * Problems that change the picture, each `<JSON path>: <message>`: an invalid reference (left
   * out), a reference to an undefined step (drawn as a `missing_step` node).
   */
  warnings: string[];
}

/** Options of {@linkcode buildFlowGraph}. */
export interface BuildGraphOptions {
  /**
   * Draw each nested flow (a flow document inside a step's input, e.g. the `$literal` flow of
   * `/map`, `/iterate`, or one stored with `/put_blob` for `/eval`) as a cluster with its own steps,
   * instead of one collapsed node. @default false
   */
  expandNested?: boolean;
  /** The plugin a component is routed to (e.g. from the config's routes), or undefined. */
  resolvePlugin?: (component: string) => string | undefined;
}

/**
 * Builds the graph of a flow.
 *
 * Never throws for a flow that loaded: references that cannot be compiled are left out and named
 * in `warnings`; a reference to a step that does not exist becomes a `missing_step` node.
 */
export function buildFlowGraph(
  flow: Flow | LoadedFlow,
  options: BuildGraphOptions = {},
): FlowGraph {
  if (flow === null || typeof flow !== "object" || Array.isArray(flow)) {
    // (was: "Cannot use 'in' operator to search for 'flow' in null")
    throw new TypeError(
      `a flow to draw must be a Flow or a loaded flow (loadFlow()), got ${
        flow === null ? "null" : Array.isArray(flow) ? "an array" : typeof flow
      }`,
    );
  }
  const f = "flow" in flow && "raw" in flow ? flow.flow : flow as Flow;
  const b = new Builder(options);
  const graph: FlowGraph = {
    nodes: b.addFlow(f, "", undefined, []),
    edges: b.edges,
    clusters: b.clusters,
    warnings: b.warnings,
  };
  if (f.name !== undefined) graph.name = f.name;
  return graph;
}

class Builder {
  edges: GraphEdge[] = [];
  clusters: GraphCluster[] = [];
  warnings: string[] = [];
  #edgeIndex = new Map<string, GraphEdge>();
  #nodeIds = new Set<string>();

  constructor(readonly options: BuildGraphOptions) {}

  /**
   * Adds the edges of `flow` and returns its nodes in drawing order (input, variables, each step
   * followed by its nested flows, undefined steps, output). Ids are prefixed with `prefix`; `at`
   * is the flow's JSON path.
   */
  addFlow(flow: Flow, prefix: string, cluster: string | undefined, at: Path): GraphNode[] {
    const head: GraphNode[] = [];
    const body: GraphNode[] = [];
    const missing: GraphNode[] = [];
    const inCluster = (n: GraphNode): GraphNode => {
      if (cluster !== undefined) n.cluster = cluster;
      this.#nodeIds.add(n.id);
      return n;
    };
    const inputId = `${prefix}input`;
    const outputId = `${prefix}output`;
    const variablesId = `${prefix}variables`;
    head.push(inCluster({ id: inputId, kind: "input", label: "input" }));
    let variablesNode: GraphNode | undefined;
    /** Step id → node id of its first definition; node id of each step by index. */
    const stepNodes = new Map<string, string>();
    /** Step id → index of its first definition (a step may read only earlier steps). */
    const stepIndex = new Map<string, number>();
    /** Index of the step whose references are being added; undefined for the output. */
    let current: number | undefined;
    const nodeIdOf: string[] = [];
    for (const [i, step] of flow.steps.entries()) {
      let id = `${prefix}step:${step.id}`;
      // a repeated step id (a validation error) gets its own node
      if (this.#nodeIds.has(id)) id = `${id}#${i}`;
      this.#nodeIds.add(id);
      nodeIdOf.push(id);
      if (!stepNodes.has(step.id)) {
        stepNodes.set(step.id, id);
        stepIndex.set(step.id, i);
      }
    }
    const stepsByNode = new Map<string, GraphNode>();

    /** The node a reference reads from (creating `variables` or a `missing_step` node). */
    const sourceOf = (ref: CompiledRef, where: string): { node: string; path: string } => {
      const path = ref.path?.text ?? "$";
      switch (ref.base.type) {
        case "input":
          return { node: inputId, path };
        case "variable": {
          if (!variablesNode) {
            variablesNode = inCluster({ id: variablesId, kind: "variables", label: "variables" });
            head.push(variablesNode);
          }
          const segments = [ref.base.name, ...(ref.path?.segments ?? [])];
          return { node: variablesId, path: pathText(segments) };
        }
        case "step": {
          const target = ref.base.step;
          const known = stepNodes.get(target);
          if (known !== undefined) {
            // drawn, but the flow is invalid: the arrow would close a cycle the run refuses
            const ti = stepIndex.get(target)!;
            if (current !== undefined && ti >= current) {
              this.warnings.push(
                `${jsonPath(ref.at)}: ${where} references ${
                  ti === current ? "itself" : `step '${target}', defined later (steps[${ti}])`
                }: a step may only read earlier steps, and the run refuses this flow`,
              );
            }
            return { node: known, path };
          }
          const id = `${prefix}missing:${target}`;
          if (!missing.some((n) => n.id === id)) {
            missing.push(inCluster({ id, kind: "missing_step", label: target, stepId: target }));
          }
          this.warnings.push(`${jsonPath(ref.at)}: ${where} references undefined step '${target}'`);
          return { node: id, path };
        }
      }
    };

    const addRefs = (
      template: JsonValue | undefined,
      tAt: Path,
      to: string,
      kind: GraphEdgeKind,
      where: string,
    ) => {
      if (template === undefined) return;
      for (const ref of templateRefs(template, tAt, this.warnings)) {
        const src = sourceOf(ref, where);
        const conditional = kind === "skip_if" || ref.skipDefault !== undefined;
        this.#edge(src.node, to, kind, conditional, src.path);
      }
    };

    for (const [i, step] of flow.steps.entries()) {
      const stepAt = [...at, "steps", i];
      const id = nodeIdOf[i];
      const node = inCluster(this.#stepNode(id, step));
      body.push(node);
      stepsByNode.set(id, node);
      const where = `step '${step.id}'`;
      current = i;
      addRefs(step.input, [...stepAt, "input"], id, "data", where);
      addRefs(step.skipIf, [...stepAt, "skipIf"], id, "skip_if", where);
      if (step.onError?.action === "useDefault") {
        addRefs(
          step.onError.defaultValue,
          [...stepAt, "onError", "defaultValue"],
          id,
          "error_default",
          where,
        );
      }
      if (step.input !== undefined) {
        findNestedFlows(step.input, [], (value, inInput) => {
          const at = [...stepAt, "input", ...inInput];
          body.push(...this.#nested(value, step, id, inInput, at, cluster));
        });
      }
    }
    current = undefined;
    addRefs(flow.output, [...at, "output"], outputId, "data", "the output");

    // The required set (stepflow 0.8 §1.6): what the output and mustExecute steps read, closed
    // over the input and skipIf references (onError defaults are not dependencies).
    const deps = new Map<string, string[]>();
    const pending: string[] = [];
    for (const e of this.edges) {
      if (!stepsByNode.has(e.from)) continue;
      if (e.to === outputId) pending.push(e.from);
      if ((e.kind === "data" || e.kind === "skip_if") && stepsByNode.has(e.to)) {
        const list = deps.get(e.to);
        if (list) list.push(e.from);
        else deps.set(e.to, [e.from]);
      }
    }
    for (const [id, n] of stepsByNode) if (n.mustExecute) pending.push(id);
    const required = new Set<string>();
    while (pending.length > 0) {
      const id = pending.pop()!;
      if (required.has(id)) continue;
      required.add(id);
      pending.push(...(deps.get(id) ?? []));
    }
    for (const [id, n] of stepsByNode) n.required = required.has(id);

    const output = inCluster({ id: outputId, kind: "output", label: "output" });
    return [...head, ...body, ...missing, output];
  }

  #stepNode(id: string, step: Step): GraphNode {
    const n: GraphNode = {
      id,
      kind: "step",
      label: step.id,
      stepId: step.id,
      component: step.component,
    };
    const plugin = this.options.resolvePlugin?.(step.component);
    if (plugin !== undefined) n.plugin = plugin;
    if (step.mustExecute) n.mustExecute = true;
    if (step.skipIf !== undefined) n.skipIf = true;
    const action = step.onError?.action;
    if (action === "skip" || action === "useDefault" || action === "retry") n.onError = action;
    return n;
  }

  /**
   * The nodes of a nested flow of a step, placed after the step: one collapsed node, or, expanded,
   * a cluster and its own nodes.
   */
  #nested(
    value: JsonValue,
    step: Step,
    stepNode: string,
    inInput: Path,
    at: Path,
    parentCluster: string | undefined,
  ): GraphNode[] {
    const prefix = parentCluster === undefined ? "" : `${parentCluster}/`;
    const id = `${prefix}nested:${step.id}:${pathText(inInput)}`;
    const parsed = FlowSchema.safeParse(value);
    const rawName = isJsonObject(value) && typeof value.name === "string" ? value.name : undefined;
    const name = parsed.success ? parsed.data.name : rawName;
    const label = name ?? "nested flow";
    const expand = this.options.expandNested === true && parsed.success;
    if (expand) {
      const c: GraphCluster = { id, label, step: stepNode };
      if (parentCluster !== undefined) c.parent = parentCluster;
      this.clusters.push(c);
      this.#edge(id, stepNode, "nested_flow", false, pathText(inInput));
      return this.addFlow(parsed.data, `${id}/`, id, at);
    }
    if (!parsed.success) {
      this.warnings.push(
        `${jsonPath(at)}: the nested flow of step '${step.id}' is not a valid flow`,
      );
    }
    const node: GraphNode = {
      id,
      kind: "nested_flow",
      label,
      stepCount: parsed.success ? parsed.data.steps.length : 0,
      valid: parsed.success,
    };
    if (parentCluster !== undefined) node.cluster = parentCluster;
    this.#nodeIds.add(id);
    this.#edge(id, stepNode, "nested_flow", false, pathText(inInput));
    return [node];
  }

  #edge(from: string, to: string, kind: GraphEdgeKind, conditional: boolean, path: string): void {
    const key = `${from}\u0000${to}\u0000${kind}\u0000${conditional}`;
    let e = this.#edgeIndex.get(key);
    if (!e) {
      e = { from, to, kind, conditional, paths: [] };
      this.#edgeIndex.set(key, e);
      this.edges.push(e);
    }
    if (!e.paths.includes(path)) e.paths.push(path);
  }
}
