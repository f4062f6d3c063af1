/**
 * The step results of one run as the in-memory store keeps them: parallel arrays by step index,
 * not one record object per step (issue 17). A 100,000-step run kept 100,000 records of six
 * fields; young garbage collections copied each of them twice while the run lasted (a third of
 * what a fan-out's steps keep alive), where the arrays' slots are copied with the array or, once
 * large, not at all. A table holding one step index (a one-step run: every `/map` item of a
 * one-step flow) keeps it in its own fields, without the arrays: five arrays of 17 slots each were
 * half of what a map item kept alive (issue 17, wave 8: 1,700 → 811 bytes per item kept; see
 * docs/performance.md, "sixth pass").
 * @module
 */
import type { FlowResult } from "../core/flow_result.ts";
import type { StepResultRecord } from "./records.ts";

/** Step results by step index (sparse until every step has run). */
export class StepTable {
  // While the table holds one step index (every one-step run, e.g. a map item), its fields are
  // kept here: one object per run instead of six (issue 17: a 10,000-item map kept 50,000 arrays
  // alive until its end, and young collections copied each of them twice).
  #one = -1;
  #result: FlowResult | undefined;
  #id: string | undefined;
  #component: string | undefined;
  #attempt: number | undefined;
  #duration: number | undefined;
  /** The parallel arrays, from the second step index on. */
  #results: (FlowResult | undefined)[] | undefined;
  #ids: (string | undefined)[] = EMPTY;
  #components: (string | undefined)[] = EMPTY;
  #attempts: (number | undefined)[] = EMPTY;
  #durations: (number | undefined)[] = EMPTY;

  /** One more than the highest step index in the arrays. */
  #length = 0;

  /** One more than the highest step index with a result (0 when none). */
  get length(): number {
    return this.#results !== undefined ? this.#length : this.#one + 1;
  }

  /** Keeps `r`'s fields (not `r` itself); replaces what step `r.stepIndex` had. */
  set(r: StepResultRecord): void {
    const i = r.stepIndex;
    if (this.#results === undefined) {
      if (this.#one === -1 || this.#one === i) {
        this.#one = i;
        this.#result = r.result;
        this.#id = r.stepId;
        this.#component = r.component;
        this.#attempt = r.attempt;
        this.#duration = r.durationMs;
        return;
      }
      this.#toArrays(i);
    }
    if (i >= this.#length) this.#length = i + 1;
    this.#results![i] = r.result;
    this.#ids[i] = r.stepId;
    this.#components[i] = r.component;
    this.#attempts[i] = r.attempt;
    this.#durations[i] = r.durationMs;
  }

  /**
   * Moves the one kept step into the parallel arrays (step index `i` arrived). They are made
   * with room for both indexes and a few more (an empty array grown by one assignment takes 17
   * slots: five of them were 0.9 KB per run of a two-step map item flow); past that they grow as
   * arrays do.
   */
  #toArrays(i: number): void {
    const j = this.#one;
    const n = Math.max(i, j) + 1 + SLACK;
    this.#results = new Array(n);
    this.#ids = new Array(n);
    this.#components = new Array(n);
    this.#attempts = new Array(n);
    this.#durations = new Array(n);
    this.#length = j + 1;
    this.#results[j] = this.#result;
    this.#ids[j] = this.#id;
    this.#components[j] = this.#component;
    this.#attempts[j] = this.#attempt;
    this.#durations[j] = this.#duration;
    this.#result =
      this.#id =
      this.#component =
      this.#attempt =
      this.#duration =
        undefined;
  }

  /** The result of step `i`, or undefined when it has none. */
  result(i: number): FlowResult | undefined {
    if (this.#results === undefined) return i === this.#one ? this.#result : undefined;
    return this.#results[i];
  }

  /**
   * Step `i`'s record as it was given (without `at`, which the store keeps apart), or undefined
   * when it has none. A new object each call; optional fields given as undefined are left out.
   */
  record(i: number): StepResultRecord | undefined {
    let result, id, component, attempt, duration;
    if (this.#results === undefined) {
      if (i !== this.#one) return undefined;
      result = this.#result;
      id = this.#id;
      component = this.#component;
      attempt = this.#attempt;
      duration = this.#duration;
    } else {
      result = this.#results[i];
      id = this.#ids[i];
      component = this.#components[i];
      attempt = this.#attempts[i];
      duration = this.#durations[i];
    }
    if (result === undefined) return undefined;
    const r: StepResultRecord = { stepIndex: i, stepId: id!, result };
    if (component !== undefined) r.component = component;
    if (attempt !== undefined) r.attempt = attempt;
    if (duration !== undefined) r.durationMs = duration;
    return r;
  }
}

/** Room for this many more step indexes when the arrays are made. */
const SLACK = 4;

/** The arrays' placeholder before the second step index (never written). */
const EMPTY: never[] = [];
