/**
 * The text the renderers draw for nodes and edges, and the CSS class names of the SVG: one place
 * so that Mermaid, DOT and SVG say the same thing. Every string is printable (control characters
 * shown as `\u0001`, lone surrogates replaced); each renderer escapes it for its own syntax.
 * @module
 */
import type { GraphEdge, GraphNode } from "./graph.ts";

/** Options shared by the renderers. */
export interface LabelOptions {
  /**
   * Show components, plugins, markers and edge paths (stepflow 0.8 `--no-details` turns them
   * off: nodes show only step ids). @default true
   */
  details?: boolean;
}

/** Longest text of one label line before it is cut with `…` (characters). */
export const MAX_LINE = 60;
/** Most paths listed on one edge; more are counted (`+2 more`). */
export const MAX_EDGE_PATHS = 3;

/** `s` with control characters written as `\u00XX` and lone surrogates replaced (U+FFFD). */
export function printable(s: string): string {
  return s.toWellFormed().replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  ).replaceAll("\t", " ");
}

/** `s` made printable and cut to `max` characters (code points) with `…`. */
export function clip(s: string, max = MAX_LINE): string {
  const p = printable(s);
  const cps = [...p];
  return cps.length <= max ? p : cps.slice(0, max - 1).join("") + "…";
}

/** A node's label: its title lines (the step id, the nested flow's name) and detail lines. */
export interface NodeLabel {
  title: string[];
  details: string[];
}

/**
 * The label of a node. No line contains a newline: a step id with a newline becomes two lines.
 * - step: id; component (`→ plugin` when routed); markers (`mustExecute`, `skipIf`, `onError:
 *   retry`, `never runs` for a step outside the required set);
 * - nested flow: its name; `nested flow, N steps` (or `invalid nested flow`);
 * - undefined step: its id; `undefined step`;
 * - input, output, variables: the word.
 */
export function nodeLabel(node: GraphNode, options: LabelOptions = {}): NodeLabel {
  const title = splitLines(node.label);
  const details: string[] = [];
  if (options.details === false) return { title, details };
  switch (node.kind) {
    case "step": {
      const plugin = node.plugin !== undefined ? ` → ${node.plugin}` : "";
      details.push(clip(`${node.component ?? ""}${plugin}`));
      const marks: string[] = [];
      if (node.mustExecute) marks.push("mustExecute");
      if (node.skipIf) marks.push("skipIf");
      if (node.onError) marks.push(`onError: ${node.onError}`);
      if (node.required === false) marks.push("never runs");
      if (marks.length > 0) details.push(marks.join(" · "));
      break;
    }
    case "nested_flow": {
      const n = node.stepCount ?? 0;
      details.push(
        node.valid === false
          ? "invalid nested flow"
          : `nested flow, ${n} step${n === 1 ? "" : "s"}`,
      );
      break;
    }
    case "missing_step":
      details.push("undefined step");
      break;
  }
  return { title, details };
}

/** All lines of a node's label, title first. */
export function nodeLines(node: GraphNode, options: LabelOptions = {}): string[] {
  const l = nodeLabel(node, options);
  return [...l.title, ...l.details];
}

/** The label of an edge (one line), or "" for none. */
export function edgeLabel(edge: GraphEdge, options: LabelOptions = {}): string {
  const details = options.details !== false;
  const prefix = edge.kind === "skip_if"
    ? "skipIf"
    : edge.kind === "error_default"
    ? "onError default"
    : "";
  if (!details) return prefix;
  const shown = edge.paths.map(pathLabel).filter((p) => p !== "");
  let text = shown.slice(0, MAX_EDGE_PATHS).map((p) => clip(p, 40)).join(", ");
  if (shown.length > MAX_EDGE_PATHS) text += ` +${shown.length - MAX_EDGE_PATHS} more`;
  if (prefix === "") return text;
  return text === "" ? prefix : `${prefix}: ${text}`;
}

/** A path as shown on an edge: `$.a.b` → `a.b`, `$[0]` → `[0]`, `$` (the whole value) → ``. */
export function pathLabel(path: string): string {
  if (path === "$") return "";
  if (path.startsWith("$.")) return path.slice(2);
  if (path.startsWith("$")) return path.slice(1);
  return path;
}

function splitLines(s: string): string[] {
  return s.split(/\r\n|\r|\n/).map((l) => clip(l));
}

/**
 * The CSS class of a step's node in the SVG: `step-` and the step id with every character other
 * than `A-Z a-z 0-9 -` written as `_` and its code point in hex and `_` (`my step` →
 * `step-my_20_step`, `a_b` → `step-a_5f_b`): a valid class name, one per step id.
 */
export function stepClass(stepId: string): string {
  return `step-${classPart(stepId)}`;
}

/** The CSS class of a step status in the SVG: `status-` and the status, encoded as in {@linkcode stepClass}. */
export function statusClass(status: string): string {
  return `status-${classPart(status)}`;
}

function classPart(s: string): string {
  let out = "";
  for (const ch of s) {
    out += /^[A-Za-z0-9-]$/.test(ch) ? ch : `_${ch.codePointAt(0)!.toString(16)}_`;
  }
  return out;
}
