/**
 * A finished nested run as the in-memory store keeps it when it has at most one step result
 * (at step index 0) and nothing else: no nested runs, no step start kept, no step times (journal
 * off). Every `/map`, `/iterate` or `eval` item of a one-step flow ends so, and is kept until its
 * top-level run is evicted (issue 17, wave 11; see docs/performance.md, "ninth pass"):
 *
 * - {@linkcode CompactRun}: one object holding the run's record and its step's fields, in place of
 *   a run entry and a step table (80 + 88 → 72 bytes);
 * - {@linkcode FoldedRun}: when the run's result is its step's and its record and step have the
 *   {@linkcode RunShape} of its parent's nested run before it (the items of one map step, from
 *   the second on; the shape is kept per parent, so maps finishing side by side fold too):
 *   the fields the runs share are kept once in the shape, the run keeps its own (a record and a
 *   compact run, 128 + 72 → 88 bytes). Its record is made again on each read.
 *
 * A map item of a one-step flow keeps 416 bytes in all (631 before; the rest: its result and
 * output, its id and key strings, its place in lists).
 *
 * Both read as a run entry of src/state/memory.ts does (`rec`, `steps`, `kids`, `starts`,
 * `stepAt`, `moved`), so that the store's readers take any of them; a write (to a folded run's
 * record, or a step started or recorded again, a nested run of its own) turns them back into a
 * run entry first (`MemoryStateStore`'s `#open`).
 * @module
 */
import type { FlowResult } from "../core/flow_result.ts";
import type { RunRecord, StepResultRecord } from "./records.ts";
import { type OneStepFields, type StepReader, StepTable } from "./step_table.ts";

/**
 * What a {@linkcode CompactRun} and a {@linkcode FoldedRun} read as: a finished nested run kept
 * in its parent, with no nested runs, no step starts or times, and at most step 0's result.
 */
export abstract class KeptRun implements StepReader {
  /** The run's record (a folded run's is made again on each read). */
  abstract readonly rec: RunRecord;
  /** One more than the highest step index with a result: 1, or 0 without a step result. */
  abstract readonly length: number;
  /** See {@linkcode StepTable.record}. */
  abstract record(i: number): StepResultRecord | undefined;
  /** See {@linkcode StepTable.coversCall}. */
  abstract coversCall(i: number, component: string, attempt: number): boolean;

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

  /** Always true: a finished nested run kept in its parent. */
  get moved(): true {
    return true;
  }

  /** Its step results: itself. */
  get steps(): StepReader {
    return this;
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

/** A finished nested run with at most step 0's result (see the module doc). */
export class CompactRun extends KeptRun implements OneStepFields {
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
    super();
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
}

/** The record fields each folded run keeps of its own (the others are its shape's). */
const OWN_FIELDS = new Set(["runId", "input", "result", "createdAt", "completedAt", "runKey"]);
/** The record fields a shape holds for all its runs. */
const SHARED_FIELDS = new Set([
  "flowId",
  "flowName",
  "status",
  "parentRunId",
  "rootRunId",
  "ownerId",
  "leaseEpoch",
]);

/**
 * What the folded runs of one kind share (the items of one map step): their records' keys in
 * order, the values of {@linkcode SHARED_FIELDS}, their step's id, component and attempt.
 */
export class RunShape {
  readonly keys: string[];
  readonly flowId: string;
  readonly flowName: string | undefined;
  readonly status: RunRecord["status"];
  readonly parentRunId: string | undefined;
  readonly rootRunId: string | undefined;
  readonly ownerId: string | undefined;
  readonly leaseEpoch: number | undefined;
  readonly stepId: string | undefined;
  readonly component: string | undefined;
  readonly attempt: number | undefined;

  private constructor(keys: string[], rec: RunRecord, step: OneStepFields) {
    this.keys = keys;
    this.flowId = rec.flowId;
    this.flowName = rec.flowName;
    this.status = rec.status;
    this.parentRunId = rec.parentRunId;
    this.rootRunId = rec.rootRunId;
    this.ownerId = rec.ownerId;
    this.leaseEpoch = rec.leaseEpoch;
    this.stepId = step.stepId;
    this.component = step.component;
    this.attempt = step.attempt;
  }

  /**
   * The shape of `rec` (keys `keys`, its `Object.keys`) and its step `step`, or undefined when
   * `rec` has a field neither its own nor shared (overrides, variables, ...): it is not folded.
   */
  static of(rec: RunRecord, keys: string[], step: OneStepFields): RunShape | undefined {
    for (const k of keys) if (!OWN_FIELDS.has(k) && !SHARED_FIELDS.has(k)) return undefined;
    return new RunShape(keys, rec, step);
  }

  /** Whether `rec` (keys `keys`) and its step `step` have this shape. */
  fits(rec: RunRecord, keys: string[], step: OneStepFields): boolean {
    const own = this.keys;
    if (keys.length !== own.length) return false;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== own[i]) return false;
    return rec.flowId === this.flowId && rec.flowName === this.flowName &&
      rec.status === this.status && rec.parentRunId === this.parentRunId &&
      rec.rootRunId === this.rootRunId && rec.ownerId === this.ownerId &&
      rec.leaseEpoch === this.leaseEpoch && step.stepId === this.stepId &&
      step.component === this.component && step.attempt === this.attempt;
  }
}

/**
 * A finished nested run folded further than a {@linkcode CompactRun}: what its record and step
 * share with the other runs of its kind is in its {@linkcode RunShape}; it keeps its own fields
 * only, its step's result being its run's result (issue 17, wave 11: a map item's record and
 * compact run, 200 bytes, become 88). Its record is made again on each read of `rec` (a new
 * object, the same keys in the same order), so its record is read, never written: a write turns
 * it back into a run entry (`MemoryStateStore`'s `#open`).
 */
export class FoldedRun extends KeptRun {
  readonly shape: RunShape;
  readonly runId: string;
  readonly input: RunRecord["input"];
  /** The run's result, and its step's. */
  readonly result: FlowResult;
  readonly createdAt: string;
  readonly completedAt: string | undefined;
  readonly runKey: string | undefined;
  readonly durationMs: number | undefined;

  constructor(shape: RunShape, rec: RunRecord, durationMs: number | undefined) {
    super();
    this.shape = shape;
    this.runId = rec.runId;
    this.input = rec.input;
    this.result = rec.result!;
    this.createdAt = rec.createdAt;
    this.completedAt = rec.completedAt;
    this.runKey = rec.runKey;
    this.durationMs = durationMs;
  }

  /** The run's record, made again: the keys of the record it was folded from, in their order. */
  get rec(): RunRecord {
    const s = this.shape;
    const r: Record<string, unknown> = {};
    for (const k of s.keys) {
      switch (k) {
        case "runId":
          r.runId = this.runId;
          break;
        case "input":
          r.input = this.input;
          break;
        case "result":
          r.result = this.result;
          break;
        case "createdAt":
          r.createdAt = this.createdAt;
          break;
        case "completedAt":
          r.completedAt = this.completedAt;
          break;
        case "runKey":
          r.runKey = this.runKey;
          break;
        default:
          r[k] = s[k as keyof RunShape];
      }
    }
    return r as unknown as RunRecord;
  }

  /** The flow of the run (its shape's). */
  get flowId(): string {
    return this.shape.flowId;
  }

  /** The flow's name (its shape's). */
  get flowName(): string | undefined {
    return this.shape.flowName;
  }

  /** The run's status (its shape's: a finished one). */
  get status(): RunRecord["status"] {
    return this.shape.status;
  }

  /** The parent run (its shape's). */
  get parentRunId(): string | undefined {
    return this.shape.parentRunId;
  }

  /** One step result, at index 0. */
  get length(): number {
    return 1;
  }

  /** See {@linkcode StepTable.record}. */
  record(i: number): StepResultRecord | undefined {
    if (i !== 0) return undefined;
    const s = this.shape;
    const r: StepResultRecord = { stepIndex: 0, stepId: s.stepId!, result: this.result };
    if (s.component !== undefined) r.component = s.component;
    if (s.attempt !== undefined) r.attempt = s.attempt;
    if (this.durationMs !== undefined) r.durationMs = this.durationMs;
    return r;
  }

  /** See {@linkcode StepTable.coversCall}. */
  coversCall(i: number, component: string, attempt: number): boolean {
    return i === 0 && this.shape.component === component && (this.shape.attempt ?? 1) >= attempt;
  }
}
