/**
 * The in-memory state store (`stateStore: {type: inMemory}`, the default). Everything is lost
 * when the process exits (as in stepflow 0.8). Writes are applied at once and return nothing.
 *
 * Retention (issue 17): in a long-lived process (library, service) finished top-level runs are
 * evicted, oldest first, with their nested runs, step results, events and signals, beyond
 * `maxFinishedRuns` (default 1000), beyond `maxFinishedSteps` step results in all (default
 * 100,000: a few large runs weigh as much as many small ones) or once older than
 * `maxFinishedAgeMs` (default: no age limit). The run that finished last is kept whatever its
 * size until the next one finishes. Running runs, data blobs and batches are kept.
 *
 * Flows (the service's `POST /flows`, every flow a run used): flow blobs beyond `maxFlows`
 * (default 1000) are evicted, the one stored or used longest ago first, except the flows of the
 * runs the store holds (running or retained) and the flow stored last. Before, every flow posted
 * to an in-memory `stepflow serve` was kept for the life of the process. The ids of the last
 * {@linkcode EVICTED_FLOW_IDS} flows evicted are remembered ({@linkcode MemoryStateStore.flowEvicted})
 * so that asking for one says it was evicted, not that it never existed.
 *
 * Layout (issue 17): one {@linkcode RunEntry} per run holds its record, step results and starts
 * and its nested runs. The map of runs by id holds top-level runs and running nested runs only: a
 * nested run that finishes moves into its parent's entry (`kids`), so a `/map` over 10,000 items
 * makes one insert and one delete in a small map per item, not inserts into several maps that
 * hold every item run retained, and evicting a run drops its items with it. Finished nested runs
 * are found by id through an index built on the first lookup that needs it (then kept up to
 * date), as run keys are. A finished nested run with at most step 0's result and nothing else
 * kept (no nested runs, no step start, no step times: the journal off) is kept smaller still
 * (src/state/compact_run.ts, issue 17, wave 11): as one {@linkcode CompactRun} (its record and its
 * step's fields) in place of its entry and step table, or, when its record and step have the
 * shape of its parent's nested run seen before it (the items of a map step after the first), as a
 * {@linkcode FoldedRun}, whose shared fields are kept once. A map item keeps 416 bytes, not 631.
 * Both read as entries; a write other than to a compact run's record turns either back into an
 * entry first (`#open`).
 *
 * One class, kept whole (over 400 lines): the whole StateStore contract over maps, each method a
 * few lines next to the maps it reads (the contract: store.ts; its tests:
 * tests/state/store_contract_test.ts).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { blobId } from "./blob_id.ts";
import { type OneStepFields, StepTable } from "./step_table.ts";
import { CompactRun, FoldedRun, KeptRun, RunShape } from "./compact_run.ts";
import { IdMap, IdSet } from "../core/id_map.ts";
import {
  type BatchFilter,
  type BatchRecord,
  type ClaimedRun,
  type ClaimOptions,
  type ClaimResult,
  compareNewestFirst,
  type EngineRecord,
  type EventFilter,
  isFinished,
  type LeaseRenewal,
  type NewRunId,
  normalizeInstant,
  nowRfc3339,
  type RunEventRecord,
  type RunEventType,
  type RunFilter,
  type RunRecord,
  type RunStatus,
  type SignalRecord,
  type StateStore,
  stepEventData,
  stepEventType,
  type StepInfoRecord,
  type StepResultRecord,
  type StepStartRecord,
  stepStatusOf,
  type StoredBlob,
} from "./store.ts";

/** Options of {@linkcode MemoryStateStore}. */
export interface MemoryStoreOptions {
  /**
   * Most finished top-level runs kept; older ones are evicted (with their nested runs).
   * `Infinity` keeps every run. @default 1000
   */
  maxFinishedRuns?: number;
  /**
   * Most step results kept over all finished top-level runs (their nested runs' steps count):
   * beyond it the oldest runs are evicted; the last finished run stays whatever its size.
   * `Infinity` for no limit. @default 100000
   */
  maxFinishedSteps?: number;
  /** Finished top-level runs older than this (ms since they finished) are evicted. @default Infinity */
  maxFinishedAgeMs?: number;
  /**
   * Most flow blobs kept: beyond it, the flow stored (or last used by a run) longest ago is
   * evicted, unless a run the store holds uses it (those stay, as long as their runs) or it is
   * the flow stored last. `Infinity` keeps every flow. @default 1000
   */
  maxFlows?: number;
  /** The clock of retention, ms since epoch (tests). @default Date.now */
  clock?: () => number;
  /**
   * Keep the run journal ({@linkcode StateStore.getEvents}): the service turns it on for its
   * event streams. Off, `getEvents` returns nothing and a step costs no event object (the
   * library's and `stepflow run`'s default; run observers see every event live). @default false
   */
  journal?: boolean;
}

/** Finished top-level runs kept by default. */
export const DEFAULT_MAX_FINISHED_RUNS = 1000;
/** Step results of finished runs kept by default (about 35 MB of small built-in results). */
export const DEFAULT_MAX_FINISHED_STEPS = 100_000;

/** Flow blobs kept by default. */
export const DEFAULT_MAX_FLOWS = 1000;
/** How many ids of evicted flows are remembered (64 hex characters each: about 1 MB). */
export const EVICTED_FLOW_IDS = 10_000;

/** A step's start as kept in memory. */
interface StepStart {
  stepId: string;
  component: string;
  attempt: number;
  at: string;
}

/** The slot of an evicted run in the retention queue. */
const EVICTED: [string, number, number] = ["", 0, 0];

/**
 * A new array holding `v` at index `i`, with room for `i + 1` slots: an empty array grown by one
 * assignment takes 17, and a one-step run's lists live as long as the run is kept (issue 17).
 */
function arrayWith<T>(i: number, v: T): (T | undefined)[] {
  if (i === 0) return [v];
  const a = new Array<T | undefined>(i + 1);
  a[i] = v;
  return a;
}

/** A batch's runs: run id and item index, position by position. */
interface BatchRunList {
  ids: string[];
  /**
   * Item indexes by position; undefined while each run's index is its position (a batch's runs
   * are added in item order: 8 bytes less per map item kept, issue 17).
   */
  indexes: number[] | undefined;
}

/** The item index of the run at position `j` of `list`. */
function indexAt(list: BatchRunList, j: number): number {
  return list.indexes === undefined ? j : list.indexes[j];
}

/** A run as kept in memory: its record and what belongs to it. */
interface RunEntry {
  /** The store's own copy (never handed out: reads get copies). */
  rec: RunRecord;
  /** The parent run's entry, when the parent was known at `createRun`. */
  parent: RunEntry | undefined;
  /** Nested runs (running and finished), in the order they were created. */
  kids: Entry[] | undefined;
  /** Step results, by step index. */
  steps: StepTable | undefined;
  /** When each step result was stored (RFC 3339), by step index (journal on only). */
  stepAt: string[] | undefined;
  starts: (StepStart | undefined)[] | undefined;
  /** True once it left the map of runs by id (a finished nested run: found through its parent). */
  moved: boolean;
  /** Where it was put in its parent's `kids` (a hint: a deleted sibling shifts it), else -1. */
  slot: number;
  /**
   * The shape of its nested run folded or seen last (see {@linkcode MemoryStateStore.#fold}): kept
   * per parent, so that the items of maps running side by side (a map of maps) are folded too.
   */
  shape: RunShape | undefined;
}

/** A new run's entry: its record, under `parent` (when known), nothing else yet. */
function newEntry(rec: RunRecord, parent: RunEntry | undefined): RunEntry {
  return {
    rec,
    parent,
    kids: undefined,
    steps: undefined,
    stepAt: undefined,
    starts: undefined,
    moved: false,
    slot: -1,
    shape: undefined,
  };
}

/**
 * A run as kept: an entry, or a finished nested run with one step result kept compact or folded
 * (it reads as an entry, a folded run's `rec` made again on each read; see
 * src/state/compact_run.ts). {@linkcode MemoryStateStore.#open} gives an entry.
 */
type Entry = RunEntry | CompactRun | FoldedRun;

/** What `e`'s run id, flow and key are read from without making a folded run's record again. */
function idsOf(e: Entry): { runId: string; flowId: string; runKey?: string } {
  return e instanceof FoldedRun ? e : e.rec;
}

/** A {@linkcode StateStore} kept in maps; every write is applied synchronously. */
export class MemoryStateStore implements StateStore {
  readonly kind = "inMemory";
  readonly engineId: string = crypto.randomUUID();
  #blobs = new Map<string, StoredBlob>();
  /** Top-level runs, running nested runs, and nested runs whose parent is unknown. */
  #runs = new IdMap<RunEntry>();
  /**
   * Finished nested runs by id (they left {@linkcode #runs}), built on the first lookup of an id
   * {@linkcode #runs} does not hold and kept up to date from then on.
   */
  #movedIndex: Map<string, Entry> | undefined;
  /** Where {@linkcode #fold} reads a step's fields into (one object for every run). */
  #one: OneStepFields = {
    stepResult: undefined,
    stepId: undefined,
    component: undefined,
    attempt: undefined,
    durationMs: undefined,
  };
  /** How many entries are moved (no index is built while there is none). */
  #movedCount = 0;
  /**
   * Run ids by run key, built on the first {@linkcode findRunByKey} and kept from then on: a map
   * over 10,000 items would otherwise pay an insert into a large map per item for a lookup that
   * only resuming a run makes.
   */
  #byKey: Map<string, string> | undefined;
  /** Journal per root run (ids ascending). */
  #events = new Map<string, RunEventRecord[]>();
  #eventId = 0;
  #signals = new Map<string, SignalRecord[]>();
  #signalId = 0;
  #batches = new Map<string, BatchRecord>();
  /**
   * The runs of each batch as parallel lists of run ids and item indexes: no object per item
   * (issue 17: a 10,000-item map kept 10,000 of them alive until its run was evicted).
   */
  #batchRuns = new Map<string, BatchRunList>();
  /**
   * The flow blobs, the one stored or last used longest ago first (a flow is used again when
   * stored again or when the last run using it leaves the store).
   */
  #flowOrder = new Map<string, true>();
  /** How many runs the store holds use each flow, by flow id (no entry: none). */
  #flowRuns = new Map<string, number>();
  /** Ids of the last {@linkcode EVICTED_FLOW_IDS} flows evicted, oldest first. */
  #evictedFlows = new Set<string>();
  /** The flow stored last (never evicted: its run is being created). */
  #lastFlow: string | undefined;
  #maxFlows: number;
  /** Finished top-level runs in the order they finished: [runId, finished at ms, steps]. */
  #finished: [string, number, number][] = [];
  /** Where the kept runs start in {@linkcode #finished} (those before it are evicted). */
  #finishedHead = 0;
  /** Step results of the runs in {@linkcode #finished}. */
  #finishedSteps = 0;
  #maxFinished: number;
  #maxSteps: number;
  #maxAgeMs: number;
  #clock: () => number;
  #journal: boolean;
  /** This engine's `engines` record, once registered. */
  #engine: EngineRecord | undefined;
  #watchers = new Set<() => void>();

  constructor(options: MemoryStoreOptions = {}) {
    this.#journal = options.journal ?? false;
    this.#maxFinished = options.maxFinishedRuns ?? DEFAULT_MAX_FINISHED_RUNS;
    this.#maxSteps = options.maxFinishedSteps ?? DEFAULT_MAX_FINISHED_STEPS;
    this.#maxAgeMs = options.maxFinishedAgeMs ?? Infinity;
    this.#maxFlows = options.maxFlows ?? DEFAULT_MAX_FLOWS;
    this.#clock = options.clock ?? Date.now;
  }

  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    const id = knownId ?? blobId(data);
    const known = this.#blobs.get(id);
    if (known === undefined) this.#blobs.set(id, { id, data, blobType });
    if (blobType === "flow" && (known === undefined || known.blobType === "flow")) {
      // stored (again): the flow used last
      this.#flowOrder.delete(id);
      this.#flowOrder.set(id, true);
      this.#lastFlow = id;
      if (known === undefined) {
        this.#evictedFlows.delete(id);
        this.#evictFlows();
      }
    }
    return id;
  }

  /**
   * Whether blob `id` is here now (synchronous). The engine asks before it trusts a flow it
   * remembers: this store evicts flows (`maxFlows`).
   */
  hasBlob(id: string): boolean {
    // (flow ids are lower case already: no new string on a run's path)
    return this.#blobs.has(id) || this.#blobs.has(id.toLowerCase());
  }

  /**
   * Whether flow `id` was evicted (`maxFlows`) and not stored again since; only the last
   * {@linkcode EVICTED_FLOW_IDS} evicted ids are remembered.
   */
  flowEvicted(id: string): boolean {
    return this.#evictedFlows.has(id.toLowerCase());
  }

  /** The flow limit of this store (`maxFlows`). */
  get maxFlows(): number {
    return this.#maxFlows;
  }

  /**
   * Evicts flow blobs beyond `maxFlows`, the one used longest ago first, skipping the flows of
   * the runs held and the flow stored last.
   */
  #evictFlows(): void {
    const order = this.#flowOrder;
    let over = order.size - this.#maxFlows;
    if (over <= 0) return;
    for (const id of order.keys()) {
      if (over <= 0) break;
      if (this.#flowRuns.has(id) || id === this.#lastFlow) continue;
      order.delete(id);
      this.#blobs.delete(id);
      const evicted = this.#evictedFlows;
      evicted.add(id);
      if (evicted.size > EVICTED_FLOW_IDS) evicted.delete(evicted.values().next().value!);
      over--;
    }
  }

  /** One more run the store holds uses flow `flowId`. */
  #useFlow(flowId: string): void {
    const runs = this.#flowRuns;
    runs.set(flowId, (runs.get(flowId) ?? 0) + 1);
  }

  /** A run using flow `flowId` left the store: its flow may be evicted once no run uses it. */
  #unuseFlow(flowId: string): void {
    const runs = this.#flowRuns;
    const n = runs.get(flowId);
    if (n === undefined) return;
    if (n > 1) {
      runs.set(flowId, n - 1);
      return;
    }
    runs.delete(flowId);
    if (this.#flowOrder.delete(flowId)) this.#flowOrder.set(flowId, true); // used last now
  }

  getBlob(id: string): Promise<StoredBlob | undefined> {
    return Promise.resolve(this.#blobs.get(id.toLowerCase()));
  }

  /** The entry of run `runId`, wherever it is kept (to read it, or write its record only). */
  #get(runId: string): Entry | undefined {
    const e = this.#runs.get(runId);
    if (e !== undefined || this.#movedCount === 0) return e;
    return this.#moved().get(runId);
  }

  /**
   * The entry of run `runId` to write its steps, starts or nested runs: a run kept compact is
   * turned back into an entry (a finished item run resumed or given a nested run: rare).
   */
  #open(runId: string): RunEntry | undefined {
    const e = this.#runs.get(runId);
    if (e !== undefined || this.#movedCount === 0) return e;
    const m = this.#moved().get(runId);
    return m instanceof KeptRun ? this.#expand(m) : m;
  }

  /**
   * Puts an entry in the place of compact or folded run `c` (in its parent's `kids` and the
   * index). A folded run's record is made again (the entry's own).
   */
  #expand(c: CompactRun | FoldedRun): RunEntry {
    const rec = c.rec;
    const parent = this.#get(rec.parentRunId!) as RunEntry | undefined;
    const e: RunEntry = {
      rec,
      parent,
      kids: undefined,
      steps: c.toTable(),
      stepAt: undefined,
      starts: undefined,
      moved: true,
      slot: -1,
      shape: undefined,
    };
    const kids = parent?.kids;
    const i = kids?.indexOf(c) ?? -1;
    if (i >= 0) {
      kids![i] = e;
      e.slot = i;
    }
    this.#movedIndex?.set(rec.runId, e);
    return e;
  }

  /**
   * Keeps finished moved entry `e` compact when it fits (see src/state/compact_run.ts): once per
   * finished nested run, in its `completeRun`.
   */
  #compact(e: RunEntry): void {
    if (!CompactRun.fits(e.kids, e.steps, e.stepAt, e.starts)) return;
    const kids = e.parent?.kids;
    if (kids === undefined) return;
    let i = e.slot;
    if (kids[i] !== e) i = kids.lastIndexOf(e);
    if (i < 0) return;
    const c = this.#fold(e, e.parent!) ?? new CompactRun(e.rec, e.steps);
    kids[i] = c;
    this.#movedIndex?.set(e.rec.runId, c);
  }

  /**
   * `e` folded (src/state/compact_run.ts) when its record and step have the shape of the nested
   * run of `parent` folded or seen last (the items of one map step do; the first is seen, the
   * others folded); else undefined.
   */
  #fold(e: RunEntry, parent: RunEntry): FoldedRun | undefined {
    const steps = e.steps;
    if (steps === undefined || steps.length !== 1) return undefined;
    const one = this.#one;
    steps.copyOnlyStep(one);
    const rec = e.rec;
    const result = one.stepResult;
    one.stepResult = undefined; // (not kept alive here)
    if (result === undefined || result !== rec.result) return undefined;
    const keys = Object.keys(rec);
    const shape = parent.shape;
    if (shape !== undefined && shape.fits(rec, keys, one)) {
      return new FoldedRun(shape, rec, one.durationMs);
    }
    parent.shape = RunShape.of(rec, keys, one);
    return undefined;
  }

  /** The index of moved entries (built on first use). */
  #moved(): Map<string, Entry> {
    if (this.#movedIndex === undefined) {
      const index = new Map<string, Entry>();
      for (const e of this.#all()) if (e.moved) index.set(idsOf(e).runId, e);
      this.#movedIndex = index;
    }
    return this.#movedIndex;
  }

  /** Every run entry: those by id, and the finished nested runs kept in their parents. */
  *#all(): Generator<Entry> {
    const stack: Entry[] = [];
    for (const e of this.#runs.values()) {
      yield e;
      if (e.kids === undefined) continue;
      stack.push(e);
      while (stack.length > 0) {
        const kids = stack.pop()!.kids!;
        for (let i = 0; i < kids.length; i++) {
          const k = kids[i];
          if (!k.moved) continue; // in #runs: visited from there
          yield k;
          if (k.kids !== undefined) stack.push(k);
        }
      }
    }
  }

  createRun(run: RunRecord, owned = false): void {
    const parentId = run.parentRunId;
    const parent = parentId === undefined ? undefined : this.#open(parentId);
    const root = run.rootRunId ??
      (parentId === undefined ? run.runId : parent?.rec.rootRunId ?? parentId);
    const queued = run.status === "queued";
    let r: RunRecord;
    if (owned) {
      // the caller's own object (see StateStore.createRun), completed in place
      r = run;
      r.rootRunId = root;
      r.leaseEpoch = queued ? 0 : 1;
      if (!queued) r.ownerId = this.engineId;
    } else {
      // one literal per case: no property added after the copy
      r = queued
        ? { ...run, rootRunId: root, leaseEpoch: 0 }
        : { ...run, rootRunId: root, leaseEpoch: 1, ownerId: this.engineId };
    }
    // (not #get: a new id must not build the index of moved runs)
    let old = this.#runs.get(run.runId) ?? this.#movedIndex?.get(run.runId);
    // (a compact run finds its parent by its record's parentRunId: one that changes is an entry)
    if (
      old instanceof FoldedRun ||
      (old instanceof CompactRun && old.rec.parentRunId !== r.parentRunId)
    ) old = this.#expand(old);
    if (old !== undefined) {
      // the same id again replaces the record (its steps and nested runs stay, as before)
      if (old.rec.flowId !== r.flowId) {
        this.#useFlow(r.flowId);
        this.#unuseFlow(old.rec.flowId);
      }
      old.rec = r;
      if (run.runKey !== undefined) this.#byKey?.set(run.runKey, run.runId);
      this.#event(run.runId, root, queued ? "run_queued" : "run_started");
      if (queued) this.#wake();
      return;
    }
    const e = newEntry(r, parent);
    this.#runs.set(run.runId, e);
    this.#useFlow(run.flowId);
    if (parent !== undefined) {
      if (parent.kids === undefined) {
        parent.kids = [e];
        e.slot = 0;
      } else e.slot = parent.kids.push(e) - 1;
    }
    if (run.runKey !== undefined) this.#byKey?.set(run.runKey, run.runId);
    this.#event(run.runId, root, queued ? "run_queued" : "run_started");
    if (queued) this.#wake();
  }

  /**
   * Takes `id.runId` for a new top-level run at once (`StateStore.claimRunId`): the look-up and
   * the record are one synchronous step, so of two engines sharing this store and given the same
   * new id at the same moment, exactly one gets it (before, each looked the id up with `getRun`,
   * awaited, found nothing, and both ran under it: one record, their step results mixed). The
   * record is `running`, this store's, with the run's flow and input (its `createRun` completes
   * it; no event until then); a `queued` run with that id is taken over.
   * @returns undefined when the id is the caller's now; else (a copy of) the run that holds it.
   */
  claimRunId(id: NewRunId): Promise<RunRecord | undefined> {
    const old = this.#get(id.runId);
    if (old !== undefined) {
      // (a run kept compact or folded is finished)
      if (old instanceof KeptRun || old.rec.status !== "queued") {
        return Promise.resolve({ ...old.rec });
      }
      old.rec = { ...old.rec, status: "running", ownerId: this.engineId };
      return Promise.resolve(undefined);
    }
    const rec: RunRecord = {
      runId: id.runId,
      flowId: id.flowId,
      status: "running",
      input: id.input,
      createdAt: id.createdAt,
      rootRunId: id.runId,
      ownerId: this.engineId,
      leaseEpoch: 1,
    };
    if (id.flowName !== undefined) rec.flowName = id.flowName;
    this.#runs.set(id.runId, newEntry(rec, undefined));
    this.#useFlow(id.flowId);
    return Promise.resolve(undefined);
  }

  recordStepStarted(runId: string, s: StepStartRecord): void {
    const entry = this.#open(runId);
    if (entry === undefined) return;
    const at = s.at ?? (this.#journal ? nowRfc3339() : "");
    const list = entry.starts;
    const prev = list?.[s.stepIndex];
    const start: StepStart = {
      stepId: s.stepId,
      component: s.component,
      attempt: s.attempt,
      at: prev?.at ?? at,
    };
    if (list === undefined) entry.starts = arrayWith(s.stepIndex, start);
    else list[s.stepIndex] = start;
    this.#event(runId, undefined, "step_started", s.stepIndex, s.stepId, s.attempt, undefined, at);
  }

  recordStepResult(runId: string, record: StepResultRecord): void {
    // The hot path of every run: the caller's record is kept as is, no object per step.
    const entry = this.#open(runId);
    if (entry === undefined) return;
    (entry.steps ??= new StepTable()).set(record);
    // Reading the clock costs more than the rest (0.1-0.2 µs here): only with the journal on.
    if (!this.#journal) return;
    const at = record.at ?? nowRfc3339();
    if (entry.stepAt === undefined) entry.stepAt = arrayWith(record.stepIndex, at) as string[];
    else entry.stepAt[record.stepIndex] = at;
    this.#event(
      runId,
      undefined,
      stepEventType(record.result),
      record.stepIndex,
      record.stepId,
      record.attempt,
      stepEventData(record),
      at,
    );
  }

  completeRun(runId: string, status: RunStatus, result?: FlowResult): void {
    const entry = this.#open(runId);
    if (entry === undefined) return;
    const run = entry.rec;
    run.status = status;
    if (result !== undefined) run.result = result;
    run.completedAt = nowRfc3339();
    this.#event(
      runId,
      run.rootRunId,
      "run_completed",
      undefined,
      undefined,
      undefined,
      result === undefined ? { status } : { status, outcome: result.outcome },
    );
    if (!isFinished(status)) return;
    if (entry.starts !== undefined) this.#dropRedundantStart(entry);
    if (run.parentRunId === undefined) {
      const steps = this.#stepCount(entry);
      this.#finished.push([runId, this.#clock(), steps]);
      this.#finishedSteps += steps;
      this.#evict();
    } else if (entry.parent !== undefined && !entry.moved) {
      // a finished nested run is kept in its parent's entry only (see the module doc)
      entry.moved = true;
      this.#movedCount++;
      this.#runs.delete(runId);
      this.#movedIndex?.set(runId, entry);
      this.#compact(entry);
    } else if (entry.moved) this.#compact(entry); // (finished again: resumed)
  }

  /**
   * Forgets the start of a finished one-step run when its result says all it says (no time of
   * its own without the journal, the same component, no later attempt): `getStepInfo` answers
   * the same from the result, and a map item keeps 80 bytes less for as long as its run is kept.
   */
  #dropRedundantStart(entry: RunEntry): void {
    const starts = entry.starts!;
    if (starts.length !== 1) return;
    const s = starts[0];
    if (
      s === undefined ||
      (s.at === "" && entry.steps?.coversCall(0, s.component, s.attempt) === true)
    ) entry.starts = undefined;
  }

  setRunStatus(runId: string, status: RunStatus, event?: RunEventType, data?: JsonValue): void {
    const run = this.#open(runId)?.rec;
    if (!run) return;
    run.status = status;
    if (event) this.#event(runId, run.rootRunId, event, undefined, undefined, undefined, data);
  }

  #event(
    runId: string,
    root: string | undefined,
    type: RunEventType,
    stepIndex?: number,
    stepId?: string,
    attempt?: number,
    data?: JsonValue,
    at?: string,
  ): void {
    if (!this.#journal) return;
    const rootId = root ?? this.#get(runId)?.rec.rootRunId ?? runId;
    const e: RunEventRecord = { id: ++this.#eventId, runId, rootRunId: rootId, type, at: at ?? "" };
    if (at === undefined) e.at = nowRfc3339();
    if (stepIndex !== undefined) e.stepIndex = stepIndex;
    if (stepId !== undefined) e.stepId = stepId;
    if (attempt !== undefined) e.attempt = attempt;
    if (data !== undefined) e.data = data;
    const list = this.#events.get(rootId);
    if (list) list.push(e);
    else this.#events.set(rootId, [e]);
  }

  /** Step results of a run and its nested runs (slots, counted by list length). */
  #stepCount(entry: RunEntry): number {
    let n = 0;
    const stack: Entry[] = [entry];
    while (stack.length > 0) {
      const e = stack.pop()!;
      n += e.steps?.length ?? 0;
      const c = e.kids;
      if (c !== undefined) { for (let i = 0; i < c.length; i++) stack.push(c[i]); }
    }
    return n;
  }

  /** Takes a deleted top-level run out of the retention account. */
  #unfinish(runId: string): void {
    const f = this.#finished;
    for (let i = f.length - 1; i >= this.#finishedHead; i--) {
      if (f[i][0] !== runId) continue;
      this.#finishedSteps -= f[i][2];
      f.splice(i, 1);
    }
  }

  #evict(): void {
    const now = this.#clock();
    const f = this.#finished;
    let head = this.#finishedHead;
    while (
      f.length > head &&
      (f.length - head > this.#maxFinished || now - f[head][1] > this.#maxAgeMs ||
        (this.#finishedSteps > this.#maxSteps && f.length - head > 1))
    ) {
      const [id, , steps] = f[head];
      f[head++] = EVICTED;
      this.#finishedSteps -= steps;
      const run = this.#runs.get(id)?.rec;
      // a run resumed since it finished is not finished any more: only its entry goes (and
      // #delete is told it is out of the account: looking for it in the list costs O(runs))
      if (run && isFinished(run.status)) this.#delete(id, false);
    }
    // the list is a queue: `shift()` moved the whole list per run (17% of a one-step run's
    // CPU at 1,000 kept runs); the evicted head is cut off once it is half the list
    if (head > 64 && head * 2 > f.length) {
      f.splice(0, head);
      head = 0;
    }
    this.#finishedHead = head;
  }

  /**
   * How many finished nested runs are kept compact and how many folded (src/state/compact_run.ts);
   * walks every run (tests, diagnostics).
   */
  compactRuns(): { compact: number; folded: number } {
    let compact = 0, folded = 0;
    for (const e of this.#all()) {
      if (e instanceof CompactRun) compact++;
      else if (e instanceof FoldedRun) folded++;
    }
    return { compact, folded };
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    const r = this.#get(runId)?.rec;
    return Promise.resolve(r ? { ...r } : undefined);
  }

  findRunByKey(runKey: string): Promise<RunRecord | undefined> {
    if (this.#byKey === undefined) {
      this.#byKey = new Map();
      for (const e of this.#all()) {
        const r = idsOf(e);
        if (r.runKey !== undefined) this.#byKey.set(r.runKey, r.runId);
      }
    }
    const id = this.#byKey.get(runKey);
    return this.getRun(id ?? "");
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const since = filter.since === undefined ? undefined : normalizeInstant(filter.since);
    const out: RunRecord[] = [];
    for (const e of this.#all()) {
      // (a folded run's record is made only when it is listed)
      const r = e instanceof FoldedRun ? e : e.rec;
      if (filter.status !== undefined && r.status !== filter.status) continue;
      if (filter.flowName !== undefined && r.flowName !== filter.flowName) continue;
      if (since !== undefined && r.createdAt < since) continue;
      if (filter.rootOnly && r.parentRunId !== undefined) continue;
      if (filter.parentRunId !== undefined && r.parentRunId !== filter.parentRunId) continue;
      out.push(e.rec);
    }
    out.sort(compareNewestFirst);
    const offset = filter.offset ?? 0;
    const end = filter.limit === undefined ? undefined : offset + filter.limit;
    return Promise.resolve(out.slice(offset, end).map((r) => ({ ...r })));
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    const table = this.#get(runId)?.steps;
    const out: StepResultRecord[] = [];
    for (let i = 0; i < (table?.length ?? 0); i++) {
      const r = table!.record(i);
      if (r !== undefined) out.push({ stepIndex: i, stepId: r.stepId, result: r.result });
    }
    return Promise.resolve(out);
  }

  getStepInfo(runId: string): Promise<StepInfoRecord[]> {
    const entry = this.#get(runId);
    const table = entry?.steps;
    // without the journal, step times are not kept: the run's own times stand in
    const run = entry?.rec;
    const fallback = run?.completedAt ?? run?.createdAt ?? "";
    // a start without a result in a run that was cancelled or failed: the step was running when
    // the run ended (stepflow 0.8 has no `cancelled` step status), as the other stores record it
    const unfinished = run?.status === "cancelled" || run?.status === "failed";
    const times = entry?.stepAt ?? [];
    const starts = entry?.starts ?? [];
    const out: StepInfoRecord[] = [];
    const n = Math.max(table?.length ?? 0, starts.length);
    for (let i = 0; i < n; i++) {
      const r = table?.record(i);
      const s = starts[i];
      if (!r && !s) continue;
      const info: StepInfoRecord = {
        stepIndex: i,
        stepId: r?.stepId ?? s!.stepId,
        component: s?.component ?? r?.component ?? "",
        status: r ? stepStatusOf(r.result) : unfinished ? "failed" : "running",
        attempt: Math.max(s?.attempt ?? 1, r?.attempt ?? 1),
        createdAt: s?.at || times[i] || fallback,
        updatedAt: (r ? times[i] : s!.at) || fallback,
      };
      if (r?.durationMs !== undefined) info.durationMs = r.durationMs;
      out.push(info);
    }
    return Promise.resolve(out);
  }

  getEvents(filter: EventFilter): Promise<RunEventRecord[]> {
    const after = filter.afterId ?? 0;
    let lists: RunEventRecord[][];
    if (filter.rootRunId !== undefined || filter.runId !== undefined) {
      const root = filter.rootRunId ??
        this.#get(filter.runId!)?.rec.rootRunId ?? filter.runId!;
      lists = [this.#events.get(root) ?? []];
    } else {
      lists = [...this.#events.values()];
    }
    let out: RunEventRecord[] = [];
    for (const list of lists) {
      for (const e of list) {
        if (e.id <= after) continue;
        if (filter.runId !== undefined && e.runId !== filter.runId) continue;
        if (filter.rootRunId !== undefined && e.rootRunId !== filter.rootRunId) continue;
        out.push(e);
      }
    }
    if (lists.length > 1) out.sort((a, b) => a.id - b.id);
    if (filter.limit !== undefined) out = out.slice(0, filter.limit);
    return Promise.resolve(out.map((e) => ({ ...e })));
  }

  deleteRun(runId: string): Promise<boolean> {
    if (this.#get(runId) === undefined) return Promise.resolve(false);
    this.#delete(runId);
    return Promise.resolve(true);
  }

  pruneRuns(options: { before: string }): Promise<number> {
    const before = normalizeInstant(options.before);
    const roots: string[] = [];
    for (const { rec: r } of this.#runs.values()) {
      if (
        r.parentRunId === undefined && isFinished(r.status) &&
        (r.completedAt ?? r.createdAt) < before
      ) roots.push(r.runId);
    }
    let n = 0;
    for (const id of roots) n += this.#delete(id);
    return Promise.resolve(n);
  }

  /**
   * Deletes a run and its nested runs; returns how many runs were deleted. `inAccount`: false when
   * the caller took a top-level run out of the retention account already.
   */
  #delete(runId: string, inAccount = true): number {
    const entry = this.#get(runId);
    if (entry === undefined) return 0;
    const run = entry.rec;
    const removed = this.#drop([entry]);
    // flows no run uses any more may go now
    if (this.#flowOrder.size > this.#maxFlows) this.#evictFlows();
    if (run.parentRunId === undefined && inAccount) this.#unfinish(runId);
    const root = run.rootRunId ?? runId;
    // (a run id is a Map key here only with the journal on: hashing a string the first time costs
    // ~0.5 µs, and the ids of runs are not hashed elsewhere; see src/core/id_map.ts)
    if (this.#events.size > 0) {
      if (root === runId) this.#events.delete(runId);
      else {
        const list = this.#events.get(root);
        if (list) this.#events.set(root, list.filter((e) => !removed.has(e.runId)));
      }
    }
    const parent = entry instanceof KeptRun ? this.#get(run.parentRunId!) : entry.parent;
    const siblings = parent?.kids;
    const i = siblings?.indexOf(entry) ?? -1;
    if (i >= 0) siblings!.splice(i, 1);
    // batches lose the deleted runs; a batch left without runs goes too
    for (const [batchId, list] of this.#batchRuns) {
      if (!list.ids.some((id) => removed.has(id))) continue;
      const kept: BatchRunList = { ids: [], indexes: [] };
      for (let j = 0; j < list.ids.length; j++) {
        if (removed.has(list.ids[j])) continue;
        kept.ids.push(list.ids[j]);
        kept.indexes!.push(indexAt(list, j));
      }
      if (kept.ids.length > 0) this.#batchRuns.set(batchId, kept);
      else {
        this.#batchRuns.delete(batchId);
        this.#batches.delete(batchId);
      }
    }
    return removed.size;
  }

  /**
   * Takes runs and their nested runs out of the maps by id (not out of their parents' lists, nor
   * the journal, batches or retention account: {@linkcode #delete} does that); returns their ids.
   */
  #drop(entries: Entry[]): IdSet {
    const removed = new IdSet();
    const stack = [...entries];
    while (stack.length > 0) {
      const e = stack.pop()!;
      const ids = idsOf(e);
      const id = ids.runId;
      if (removed.has(id)) continue;
      removed.add(id);
      this.#unuseFlow(ids.flowId);
      if (e.kids !== undefined) { for (const k of e.kids) stack.push(k); }
      if (ids.runKey !== undefined) this.#byKey?.delete(ids.runKey);
      if (e.moved) {
        this.#movedCount--;
        this.#movedIndex?.delete(id);
      } else if (this.#runs.get(id) === e) this.#runs.delete(id);
      if (this.#signals.size > 0) this.#signals.delete(id);
    }
    return removed;
  }

  putSignal(signal: { runId: string; name: string; data: JsonValue }): Promise<SignalRecord> {
    const s: SignalRecord = {
      id: ++this.#signalId,
      runId: signal.runId,
      name: signal.name,
      data: signal.data,
      createdAt: nowRfc3339(),
    };
    const list = this.#signals.get(signal.runId);
    if (list) list.push(s);
    else this.#signals.set(signal.runId, [s]);
    this.#event(signal.runId, undefined, "signal_received", undefined, undefined, undefined, {
      name: signal.name,
      signalId: s.id,
    });
    return Promise.resolve({ ...s });
  }

  consumeSignal(
    runId: string,
    name: string,
    consumer: string,
  ): Promise<SignalRecord | undefined> {
    const list = this.#signals.get(runId) ?? [];
    let s = list.find((x) => x.name === name && x.consumedBy === consumer);
    if (!s) {
      s = list.find((x) => x.name === name && x.consumedAt === undefined);
      if (s) {
        s.consumedAt = nowRfc3339();
        s.consumedBy = consumer;
      }
    }
    return Promise.resolve(s ? { ...s } : undefined);
  }

  getSignals(runId: string): Promise<SignalRecord[]> {
    return Promise.resolve((this.#signals.get(runId) ?? []).map((s) => ({ ...s })));
  }

  claimRun(runId: string): Promise<ClaimResult> {
    const run = this.#open(runId)?.rec;
    if (!run) return Promise.resolve({ claimed: false, reason: "unknown" });
    run.ownerId = this.engineId;
    run.leaseEpoch = (run.leaseEpoch ?? 0) + 1;
    this.#event(runId, run.rootRunId, "run_resumed", undefined, undefined, undefined, {
      leaseEpoch: run.leaseEpoch,
      engineId: this.engineId,
    });
    return Promise.resolve({ claimed: true, leaseEpoch: run.leaseEpoch });
  }

  claimRuns(options: ClaimOptions): Promise<ClaimedRun[]> {
    const out: ClaimedRun[] = [];
    // (a folded run is finished: never a candidate)
    const candidates = [...this.#all()].filter((e) => !(e instanceof FoldedRun)).map((e) => e.rec)
      .filter((r) =>
        r.status === "queued" ||
        ((r.status === "running" || r.status === "paused") && r.ownerId === undefined)
      )
      // oldest first: createdAt, then runId
      .sort((a, b) =>
        a.createdAt !== b.createdAt
          ? (a.createdAt < b.createdAt ? -1 : 1)
          : (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0)
      );
    for (const run of candidates.slice(0, Math.max(0, options.limit))) {
      const resumed = run.status !== "queued";
      run.ownerId = this.engineId;
      run.leaseEpoch = (run.leaseEpoch ?? 0) + 1;
      if (run.status === "queued") run.status = "running";
      this.#event(
        run.runId,
        run.rootRunId,
        resumed ? "run_resumed" : "run_started",
        undefined,
        undefined,
        undefined,
        { leaseEpoch: run.leaseEpoch, engineId: this.engineId },
      );
      out.push({ run: { ...run }, leaseEpoch: run.leaseEpoch, resumed });
    }
    return Promise.resolve(out);
  }

  renewLeases(): Promise<LeaseRenewal> {
    if (this.#engine) this.#engine.heartbeatAt = nowRfc3339();
    const renewed: string[] = [];
    for (const e of this.#all()) {
      if (e instanceof FoldedRun) continue; // finished
      const r = e.rec;
      if (r.ownerId === this.engineId && !isFinished(r.status) && r.status !== "queued") {
        renewed.push(r.runId);
      }
    }
    return Promise.resolve({ renewed, lost: [] });
  }

  releaseRuns(runIds?: string[]): Promise<string[]> {
    const ids = runIds ?? [...this.#all()].map((e) => idsOf(e).runId);
    const out: string[] = [];
    for (const id of ids) {
      const e = this.#get(id);
      if (e instanceof FoldedRun) continue; // finished
      const r = e?.rec;
      if (!r || r.ownerId !== this.engineId || isFinished(r.status)) continue;
      delete r.ownerId;
      out.push(id);
    }
    if (out.length > 0) this.#wake();
    return Promise.resolve(out);
  }

  registerEngine(info: { url?: string } = {}): Promise<EngineRecord> {
    const at = nowRfc3339();
    this.#engine ??= { engineId: this.engineId, pid: Deno.pid, startedAt: at, heartbeatAt: at };
    if (info.url !== undefined) this.#engine.url = info.url;
    return Promise.resolve({ ...this.#engine });
  }

  listEngines(): Promise<EngineRecord[]> {
    return Promise.resolve(this.#engine ? [{ ...this.#engine }] : []);
  }

  watchQueue(onWork: () => void): () => void {
    const fn = () => onWork();
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  /** Tells the queue's watchers (after the current task: the writer goes on first). */
  #wake(): void {
    if (this.#watchers.size === 0) return;
    queueMicrotask(() => {
      for (const w of this.#watchers) {
        try {
          w();
        } catch {
          // a watcher's failure is its own
        }
      }
    });
  }

  createBatch(batch: BatchRecord): void {
    this.#batches.set(batch.batchId, { ...batch });
  }

  addBatchRun(batchId: string, runId: string, index: number): void {
    let l = this.#batchRuns.get(batchId);
    if (!l) this.#batchRuns.set(batchId, l = { ids: [], indexes: undefined });
    if (l.indexes === undefined && index !== l.ids.length) l.indexes = l.ids.map((_, j) => j);
    l.ids.push(runId);
    l.indexes?.push(index);
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    const b = this.#batches.get(batchId);
    return Promise.resolve(b ? { ...b } : undefined);
  }

  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]> {
    const l = this.#batchRuns.get(batchId);
    const out: { runId: string; index: number }[] = [];
    if (l !== undefined) {
      for (let i = 0; i < l.ids.length; i++) out.push({ runId: l.ids[i], index: indexAt(l, i) });
    }
    return Promise.resolve(out);
  }

  listBatches(filter: BatchFilter = {}): Promise<BatchRecord[]> {
    const out = [...this.#batches.values()].filter((b) =>
      (filter.status === undefined || b.status === filter.status) &&
      (filter.flowName === undefined || b.flowName === filter.flowName)
    ).map((b) => ({ ...b })).reverse();
    // newest first; batches made in the same millisecond stay newest first (insertion order)
    out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    const offset = filter.offset ?? 0;
    return Promise.resolve(
      out.slice(offset, filter.limit === undefined ? undefined : offset + filter.limit),
    );
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
