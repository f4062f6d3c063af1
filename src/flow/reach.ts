/**
 * "Does step A depend, directly or not, on step B?" asked many times of one flow's dependency
 * edges (src/flow/validate.ts: an `onError.defaultValue` reading a step its own step does not
 * depend on). A walk per question was quadratic: in a chain of 8,000 steps whose defaults read
 * step 0, validating took 3.5 s (50,000 steps, within the service's 10 MiB body limit, minutes).
 * Here each step gets its level (the longest path of edges below it), a step is never searched
 * below the level of the step looked for, and what is learnt about the steps walked is kept per
 * target: questions about one target cost O(steps + edges) in all.
 * @module
 */

/** Reachability over `deps` (step id → the step ids it reads), for many questions. */
export class StepReach {
  readonly #deps: ReadonlyMap<string, readonly string[]>;
  #levels?: Map<string, number>;
  /** True when the edges have a cycle: levels do not order them, and are not used. */
  #cyclic = false;
  /** Per target: the steps known to reach it (true) or not (false). */
  readonly #memo = new Map<string, Map<string, boolean>>();

  constructor(deps: ReadonlyMap<string, readonly string[]>) {
    this.#deps = deps;
  }

  /** True if step `from` depends, directly or not, on step `to` (through at least one edge). */
  dependsOn(from: string, to: string): boolean {
    const levels = this.#levels ??= this.#computeLevels();
    const cyclic = this.#cyclic;
    const floor = cyclic ? -1 : levels.get(to) ?? 0;
    if (!cyclic && (levels.get(from) ?? 0) <= floor) return false;
    let memo = this.#memo.get(to);
    if (memo === undefined) this.#memo.set(to, memo = new Map());
    // iterative depth-first walk (a chain of 50,000 steps would overflow a recursive one):
    // reaches(n) = some dep d of n is `to`, or is above the floor and reaches `to`
    const stack: string[] = [from];
    const next: number[] = [0];
    const onStack = new Set<string>([from]);
    let found = false;
    while (stack.length > 0) {
      const top = stack.length - 1;
      const node = stack[top];
      const deps = this.#deps.get(node) ?? [];
      if (found || next[top] >= deps.length) {
        memo.set(node, found);
        onStack.delete(node);
        stack.pop();
        next.pop();
        continue;
      }
      const d = deps[next[top]++];
      if (d === to) {
        found = true;
        continue;
      }
      const known = memo.get(d);
      if (known !== undefined) {
        if (known) found = true;
        continue;
      }
      if (onStack.has(d) || (!cyclic && (levels.get(d) ?? 0) <= floor)) continue;
      stack.push(d);
      next.push(0);
      onStack.add(d);
    }
    return found;
  }

  /** Each step's level: 0 without deps, else 1 + the highest level of its deps. */
  #computeLevels(): Map<string, number> {
    const levels = new Map<string, number>();
    const state = new Map<string, 1 | 2>(); // 1: on the walk's stack, 2: done
    for (const root of this.#deps.keys()) {
      if (state.has(root)) continue;
      const stack: string[] = [root];
      const next: number[] = [0];
      state.set(root, 1);
      while (stack.length > 0) {
        const top = stack.length - 1;
        const node = stack[top];
        const deps = this.#deps.get(node) ?? [];
        if (next[top] < deps.length) {
          const d = deps[next[top]++];
          const s = state.get(d);
          if (s === 1) this.#cyclic = true;
          else if (s === undefined) {
            state.set(d, 1);
            stack.push(d);
            next.push(0);
          }
          continue;
        }
        let level = 0;
        for (const d of deps) level = Math.max(level, (levels.get(d) ?? 0) + 1);
        levels.set(node, level);
        state.set(node, 2);
        stack.pop();
        next.pop();
      }
    }
    return levels;
  }
}
