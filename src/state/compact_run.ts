/**
 * A finished nested run as the in-memory store keeps it when it has at most one step result
 * (at step index 0) and nothing else: no nested runs, no step start kept, no step times (journal
 * off). Every `/map`, `/iterate` or `eval` item of a one-step flow ends so, and is kept until its
 * top-level run is evicted: one object holding the run's record and its step's fields, in place
 * of a run entry and a step table (issue 17, wave 11: 168 → 72 bytes per map item; see
 * docs/performance.md, "ninth pass").
 *
 * It reads as a run entry of src/state/memory.ts does (`rec`, `steps`, `kids`, `starts`,
 * `stepAt`, `moved`), so that the store's readers take either; a write other than to its record
 * (a step started or recorded again, a nested run of its own) turns it back into a run entry
 * first (`MemoryStateStore`'s `#open`).
 * @module
 */
import type { FlowResult } from "../core/flow_result.ts";
import type { RunRecord, StepResultRecord } from "./records.ts";
import { type OneStepFields, type StepReader, StepTable } from "./step_table.ts";

/** A finished nested run with at most step 0's result (see the module doc). */
export class CompactRun implements StepReader, OneStepFields {
  /** The store's own copy of the run's record (never handed out: reads get copies). */
  rec: RunRecord;
  /** Step 0's result; undefined when the run has no step result. */
  stepResult: FlowResult | undefined = undefined;
  stepId: string | undefined = undefined;
  component: string | undefined = undefined;
  attempt: number | undefined = undefined;
  durationMs: number | undefined = undefined;

  /** `steps`: the run's step table, `length` 0 or 1 (see {@linkcode CompactRun.fits}). */
  constructor(rec: RunRecord, steps: StepTable | undefined) {
    this.rec = rec;
    if (steps !== undefined && steps.length === 1) steps.copyOnlyStep(this);
  }

  /**
   * Whether a finished moved run entry with these parts can be kept compact: no nested runs, no
   * step start, no step times, a step table of step 0 alone or none.
   */
  static fits(
    kids: unknown[] | undefined,
    steps: StepTable | undefined,
    stepAt: unknown[] | undefined,
    starts: unknown[] | undefined,
  ): boolean {
    return kids === undefined && stepAt === undefined && starts === undefined &&
      (steps === undefined || steps.length <= 1);
  }

  /** The run's nested runs: none. */
  get kids(): undefined {
    return undefined;
  }

  /** Step starts kept: none. */
  get starts(): undefined {
    return undefined;
  }

  /** Step times kept: none. */
  get stepAt(): undefined {
    return undefined;
  }

  /** Always true: a compact run is a finished nested run kept in its parent. */
  get moved(): true {
    return true;
  }

  /** Its step results: itself. */
  get steps(): StepReader {
    return this;
  }

  /** One more than the highest step index with a result: 1, or 0 without a step result. */
  get length(): number {
    return this.stepResult === undefined ? 0 : 1;
  }

  /** See {@linkcode StepTable.record}. */
  record(i: number): StepResultRecord | undefined {
    const result = this.stepResult;
    if (i !== 0 || result === undefined) return undefined;
    const r: StepResultRecord = { stepIndex: 0, stepId: this.stepId!, result };
    if (this.component !== undefined) r.component = this.component;
    if (this.attempt !== undefined) r.attempt = this.attempt;
    if (this.durationMs !== undefined) r.durationMs = this.durationMs;
    return r;
  }

  /** See {@linkcode StepTable.coversCall}. */
  coversCall(i: number, component: string, attempt: number): boolean {
    return i === 0 && this.stepResult !== undefined && this.component === component &&
      (this.attempt ?? 1) >= attempt;
  }

  /** Its step result in a table of its own (to turn it back into a run entry). */
  toTable(): StepTable | undefined {
    const r = this.record(0);
    if (r === undefined) return undefined;
    const t = new StepTable();
    t.set(r);
    return t;
  }
}
