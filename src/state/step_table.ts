/**
 * The step results of one run as the in-memory store keeps them: parallel arrays by step index,
 * not one record object per step (issue 17). A 100,000-step run kept 100,000 records of six
 * fields; young garbage collections copied each of them twice while the run lasted (a third of
 * what a fan-out's steps keep alive), where the arrays' slots are copied with the array or, once
 * large, not at all. A table holding one step index (a one-step run: every `/map` item of a
 * one-step flow) keeps it in its own fields, without the arrays: five arrays of 17 slots each were
 * half of what a map item kept alive (issue 17, wave 8: 1,700 → 811 bytes per item kept; see
 * docs/performance.md, "sixth pass"). Once such a run has finished, the in-memory store keeps its
 * step's fields in a compact or folded run instead, and the table goes (src/state/compact_run.ts,
 * {@linkcode StepTable.copyOnlyStep}; wave 11).
 * @module
 */
import type { FlowResult } from "../core/flow_result.ts";
import type { StepResultRecord } from "./records.ts";

/**
 * What reads a run's step results: a {@linkcode StepTable}, or the one step a finished nested run
 * kept compact holds (src/state/compact_run.ts).
 */
export interface StepReader {
  /** One more than the highest step index with a result (0 when none). */
  readonly length: number;
  /** See {@linkcode StepTable.record}. */
  record(i: number): StepResultRecord | undefined;
  /** See {@linkcode StepTable.coversCall}. */
  coversCall(i: number, component: string, attempt: number): boolean;
}

/** The fields of one step result, as {@linkcode StepTable.copyOnlyStep} writes them. */
export interface OneStepFields {
  stepResult: FlowResult | undefined;
  stepId: string | undefined;
  component: string | undefined;
  attempt: number | undefined;
  durationMs: number | undefined;
}

/** Step results by step index (sparse until every step has run). */
export class StepTable implements StepReader {
  // While the table holds one step index (every one-step run, e.g. a map item), its fields are
  // kept here: one object per run instead of six (issue 17: a 10,000-item map kept 50,000 arrays
  // alive until its end, and young collections copied each of them twice).
  #one = -1;
  #result: FlowResult | undefined;
  #id: string | undefined;
  #component: string | undefined;
  #attempt: number | undefined;
  #duration: number | undefined;
  /**
   * The parallel arrays, from the second step index on: one field here, not six, so that a
   * one-step table (a map item's, kept as long as its run) is 80 bytes, not 128.
   */
  #many: Columns | undefined;

  /** One more than the highest step index with a result (0 when none). */
  get length(): number {
    return this.#many !== undefined ? this.#many.length : this.#one + 1;
  }

  /** Keeps `r`'s fields (not `r` itself); replaces what step `r.stepIndex` had. */
  set(r: StepResultRecord): void {
    const i = r.stepIndex;
    let m = this.#many;
    if (m === undefined) {
      if (this.#one === -1 || this.#one === i) {
        this.#one = i;
        this.#result = r.result;
        this.#id = r.stepId;
        this.#component = r.component;
        this.#attempt = r.attempt;
        this.#duration = r.durationMs;
        return;
      }
      m = this.#toArrays(i);
    }
    if (i >= m.length) m.length = i + 1;
    m.results[i] = r.result;
    m.ids[i] = r.stepId;
    m.components[i] = r.component;
    m.attempts[i] = r.attempt;
    m.durations[i] = r.durationMs;
  }

  /**
   * Moves the one kept step into the parallel arrays (step index `i` arrived). They are made
   * with room for both indexes and a few more (an empty array grown by one assignment takes 17
   * slots: five of them were 0.9 KB per run of a two-step map item flow); past that they grow as
   * arrays do.
   */
  #toArrays(i: number): Columns {
    const j = this.#one;
    const n = Math.max(i, j) + 1 + SLACK;
    const m: Columns = {
      results: new Array(n),
      ids: new Array(n),
      components: new Array(n),
      attempts: new Array(n),
      durations: new Array(n),
      length: j + 1,
    };
    m.results[j] = this.#result;
    m.ids[j] = this.#id;
    m.components[j] = this.#component;
    m.attempts[j] = this.#attempt;
    m.durations[j] = this.#duration;
    this.#many = m;
    this.#result =
      this.#id =
      this.#component =
      this.#attempt =
      this.#duration =
        undefined;
    return m;
  }

  /**
   * Writes the fields of step 0 into `to`, for a table that holds step index 0 only (`length`
   * 1): a finished map item's run keeps them in its own object (src/state/compact_run.ts).
   */
  copyOnlyStep(to: OneStepFields): void {
    if (this.#many !== undefined || this.#one !== 0) {
      throw new RangeError("copyOnlyStep: the table holds more than step 0");
    }
    to.stepResult = this.#result;
    to.stepId = this.#id;
    to.component = this.#component;
    to.attempt = this.#attempt;
    to.durationMs = this.#duration;
  }

  /** The result of step `i`, or undefined when it has none. */
  result(i: number): FlowResult | undefined {
    const m = this.#many;
    if (m === undefined) return i === this.#one ? this.#result : undefined;
    return m.results[i];
  }

  /**
   * True when step `i` has a result of a call of `component` with attempt `attempt` or later
   * (an attempt not given counts as 1).
   */
  coversCall(i: number, component: string, attempt: number): boolean {
    const m = this.#many;
    if (m === undefined) {
      return i === this.#one && this.#result !== undefined && this.#component === component &&
        (this.#attempt ?? 1) >= attempt;
    }
    return m.results[i] !== undefined && m.components[i] === component &&
      (m.attempts[i] ?? 1) >= attempt;
  }

  /**
   * Step `i`'s record as it was given (without `at`, which the store keeps apart), or undefined
   * when it has none. A new object each call; optional fields given as undefined are left out.
   */
  record(i: number): StepResultRecord | undefined {
    let result, id, component, attempt, duration;
    const m = this.#many;
    if (m === undefined) {
      if (i !== this.#one) return undefined;
      result = this.#result;
      id = this.#id;
      component = this.#component;
      attempt = this.#attempt;
      duration = this.#duration;
    } else {
      result = m.results[i];
      id = m.ids[i];
      component = m.components[i];
      attempt = m.attempts[i];
      duration = m.durations[i];
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

/** The parallel arrays of a table with more than one step index. */
interface Columns {
  results: (FlowResult | undefined)[];
  ids: (string | undefined)[];
  components: (string | undefined)[];
  attempts: (number | undefined)[];
  durations: (number | undefined)[];
  /** One more than the highest step index in the arrays. */
  length: number;
}
