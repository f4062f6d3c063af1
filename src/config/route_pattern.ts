/**
 * Route patterns (stepflow 0.8 §2.3, `matchit` 0.8 semantics) for src/config/router.ts: literal
 * segments, `{name}` (exactly one non-empty segment) and `{*name}` (the non-empty rest of the
 * path, last in the pattern), kept in a trie. Matching tries a static segment before a
 * `{param}` before a `{*catchAll}`, with backtracking. Two patterns that differ only in parameter
 * names, or that name the parameter at the same position differently, conflict (a config error,
 * as in matchit).
 * @module
 */
import { ValidationError } from "../errors.ts";

/** One segment of a pattern. */
export type Segment =
  | { kind: "static"; text: string }
  | { kind: "param"; name: string }
  | { kind: "catchAll"; name: string };

interface TrieNode<T> {
  statics: Map<string, TrieNode<T>>;
  param?: { name: string; node: TrieNode<T> };
  catchAll?: { name: string; route: T };
  route?: T;
}

/** What a path matched: the pattern's value and the parameters' values. */
export interface PatternMatch<T> {
  route: T;
  params: Map<string, string>;
}

function newNode<T>(): TrieNode<T> {
  return { statics: new Map() };
}

/** Patterns and the value each stands for (a route), matched against paths. */
export class PatternTrie<T> {
  readonly #root: TrieNode<T> = newNode();
  readonly #patterns: string[] = [];

  /**
   * Adds `pattern` (parsed into `segments`) for `route`.
   * @throws {ValidationError} when it conflicts with a pattern added before.
   */
  insert(pattern: string, segments: readonly Segment[], route: T): void {
    let node = this.#root;
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i];
      if (s.kind === "static") {
        let next = node.statics.get(s.text);
        if (!next) node.statics.set(s.text, next = newNode());
        node = next;
      } else if (s.kind === "param") {
        if (node.param && node.param.name !== s.name) {
          throw conflict(pattern, this.#patterns, node.param.name);
        }
        if (!node.param) node.param = { name: s.name, node: newNode() };
        node = node.param.node;
      } else {
        if (node.catchAll) throw conflict(pattern, this.#patterns, node.catchAll.name);
        node.catchAll = { name: s.name, route };
        this.#patterns.push(pattern);
        return;
      }
    }
    if (node.route) throw conflict(pattern, this.#patterns);
    node.route = route;
    this.#patterns.push(pattern);
  }

  /** The route and parameters `path` matches, or undefined. */
  match(path: string): PatternMatch<T> | undefined {
    return matchNode(this.#root, path.split("/"), 0, new Map());
  }
}

function conflict(pattern: string, patterns: string[], other?: string): ValidationError {
  const clash = patterns.find((p) => patternsOverlap(p, pattern));
  return new ValidationError(
    `Conflicting route patterns: '${pattern}' conflicts with '${clash ?? other}' ` +
      `(the same path shape, or a parameter named differently at the same position): ` +
      `merge them into one pattern with several rules`,
  );
}

function patternsOverlap(a: string, b: string): boolean {
  const norm = (p: string) => p.replace(/\{\*[^}]*\}/g, "{*}").replace(/\{[^*}][^}]*\}/g, "{}");
  const na = norm(a).split("/");
  const nb = norm(b).split("/");
  for (let i = 0; i < Math.min(na.length, nb.length); i++) {
    if (na[i] !== nb[i]) return false;
    if (na[i] === "{}" || na[i] === "{*}") return true;
  }
  return na.length === nb.length;
}

function matchNode<T>(
  node: TrieNode<T>,
  segs: string[],
  i: number,
  params: Map<string, string>,
): PatternMatch<T> | undefined {
  if (i === segs.length) return node.route ? { route: node.route, params } : undefined;
  const seg = segs[i];
  const stat = node.statics.get(seg);
  if (stat) {
    const m = matchNode(stat, segs, i + 1, params);
    if (m) return m;
  }
  if (node.param && seg !== "") {
    const p = new Map(params);
    p.set(node.param.name, seg);
    const m = matchNode(node.param.node, segs, i + 1, p);
    if (m) return m;
  }
  if (node.catchAll) {
    const rest = segs.slice(i).join("/");
    if (rest !== "") {
      const p = new Map(params);
      p.set(node.catchAll.name, rest);
      return { route: node.catchAll.route, params: p };
    }
  }
  return undefined;
}

/** The segments of a route pattern. @throws {ValidationError} for a malformed pattern. */
export function parsePattern(pattern: string): Segment[] {
  if (!pattern.startsWith("/")) {
    throw new ValidationError(`Route pattern '${pattern}' must start with '/'`);
  }
  const parts = pattern.split("/");
  const out: Segment[] = [];
  const names = new Set<string>();
  parts.forEach((part, i) => {
    const m = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(part);
    if (m) {
      if (names.has(m[2])) {
        throw new ValidationError(`Route pattern '${pattern}' uses the parameter '${m[2]}' twice`);
      }
      names.add(m[2]);
      if (m[1]) {
        if (i !== parts.length - 1) {
          throw new ValidationError(
            `Route pattern '${pattern}': the catch-all '{*${m[2]}}' must be the last segment`,
          );
        }
        out.push({ kind: "catchAll", name: m[2] });
      } else {
        out.push({ kind: "param", name: m[2] });
      }
    } else if (part.includes("{") || part.includes("}")) {
      throw new ValidationError(
        `Route pattern '${pattern}': segment '${part}' is not a literal, '{name}' or '{*name}'`,
      );
    } else {
      out.push({ kind: "static", text: part });
    }
  });
  return out;
}
