/**
 * The step results of one run as the in-memory store keeps them: parallel arrays by step index,
 * not one record object per step (issue 17). A 100,000-step run kept 100,000 records of six
 * fields; young garbage collections copied each of them twice while the run lasted (a third of
 * what a fan-out's steps keep alive), where the arrays' slots are copied with the array or, once
 * large, not at all.
 * @module
 */
import type { FlowResult } from "../core/flow_result.ts";
import type { StepResultRecord } from "./records.ts";

/** Step results by step index (sparse until every step has run). */
export class StepTable {
  readonly #results: (FlowResult | undefined)[] = [];
  readonly #ids: (string | undefined)[] = [];
  readonly #components: (string | undefined)[] = [];
  readonly #attempts: (number | undefined)[] = [];
  readonly #durations: (number | undefined)[] = [];

  /** One more than the highest step index with a result (0 when none). */
  get length(): number {
    return this.#results.length;
  }

  /** Keeps `r`'s fields (not `r` itself); replaces what step `r.stepIndex` had. */
  set(r: StepResultRecord): void {
    const i = r.stepIndex;
    this.#results[i] = r.result;
    this.#ids[i] = r.stepId;
    this.#components[i] = r.component;
    this.#attempts[i] = r.attempt;
    this.#durations[i] = r.durationMs;
  }

  /** The result of step `i`, or undefined when it has none. */
  result(i: number): FlowResult | undefined {
    return this.#results[i];
  }

  /**
   * Step `i`'s record as it was given (without `at`, which the store keeps apart), or undefined
   * when it has none. A new object each call; optional fields given as undefined are left out.
   */
  record(i: number): StepResultRecord | undefined {
    const result = this.#results[i];
    if (result === undefined) return undefined;
    const r: StepResultRecord = { stepIndex: i, stepId: this.#ids[i]!, result };
    const component = this.#components[i];
    if (component !== undefined) r.component = component;
    const attempt = this.#attempts[i];
    if (attempt !== undefined) r.attempt = attempt;
    const duration = this.#durations[i];
    if (duration !== undefined) r.durationMs = duration;
    return r;
  }
}
