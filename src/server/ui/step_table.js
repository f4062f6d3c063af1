// @ts-check
/// <reference lib="dom" />
// The run page's step table: a row per step (status, component, attempt, duration) and a details
// row below each with its input and its output or error.
import { badge, duration, FINISHED, h, put, shownStepStatus, time } from "./dom.js";
import { jsonView } from "./json.js";
import { resultView, said } from "./run_view.js";

/** The step table: a row per step and a details row (input, output or error) below each. */
export class StepTable {
  /**
   * @param {(stepId: string | undefined) => void} onSelect
   * @param {() => string} runStatus
   */
  constructor(onSelect, runStatus) {
    this.onSelect = onSelect;
    this.runStatus = runStatus;
    this.tbody = h("tbody");
    this.counts = h("p", { class: "muted small counts" });
    this.el = h(
      "table",
      { class: "steps" },
      h("caption", { class: "sr-only", text: "Steps of the run, in flow order" }),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["#", "Step", "Status", "Component", "Attempt", "Duration"].map((t) =>
            h("th", { scope: "col", text: t })
          ),
          h("th", { scope: "col" }, h("span", { class: "sr-only", text: "Details" })),
        ),
      ),
      this.tbody,
    );
    /** @type {Map<string, { entry: any, row: HTMLElement, detail: HTMLElement, status: HTMLElement, attempt: HTMLElement, duration: HTMLElement, errLine: HTMLElement, toggle: HTMLElement, key: string, at: number }>} */
    this.rows = new Map();
  }

  /** @param {Record<string, any>} steps */
  update(steps) {
    const now = performance.now();
    for (const entry of Object.values(steps)) {
      const r = this.rows.get(entry.stepId) ?? this.#add(entry);
      const key = JSON.stringify([entry.status, entry.attempt, entry.input, entry.result]);
      r.at = now;
      const changed = key !== r.key;
      r.entry = entry;
      r.key = key;
      if (changed) this.#fill(r);
      this.#duration(r);
    }
    this.#count();
  }

  /**
   * A status from an event, before the next refresh brings the details.
   * @param {string} stepId
   * @param {string} status
   * @param {string} [at] when it happened (the event's time, RFC 3339)
   * @returns {boolean} whether the step's status changed
   */
  setStatus(stepId, status, at) {
    const r = this.rows.get(stepId);
    // a stored result is final: an older event (a replayed start) does not undo it
    if (!r || r.entry.status === status || r.entry.result !== undefined) return false;
    r.entry = { ...r.entry, status };
    if (status === "running") {
      if (r.entry.startedAt === undefined) {
        // the start the engine recorded (the event's time), not when the page heard of it
        const start = at !== undefined && Number.isFinite(Date.parse(at))
          ? Date.parse(at)
          : Date.now();
        r.entry.startedAt = new Date(start).toISOString();
        r.entry.durationMs = Math.max(0, Date.now() - start);
        r.entry.durationEstimated = false;
      }
      r.entry.durationMs ??= 0;
      r.at = performance.now();
    }
    r.key = "";
    this.#fill(r);
    this.#count();
    return true;
  }

  /** Shows every row again (the run's status changed what a step's status means). */
  refill() {
    for (const r of this.rows.values()) this.#fill(r);
    this.#count();
  }

  /** Advances the durations of running steps. */
  tick() {
    if (FINISHED.has(this.runStatus())) return;
    for (const r of this.rows.values()) if (r.entry.status === "running") this.#duration(r);
  }

  /**
   * Opens the details of `stepId` and moves the focus there (from the graph).
   * @param {string} stepId
   */
  open(stepId) {
    const r = this.rows.get(stepId);
    if (!r) return;
    this.#expand(r, true);
    this.#select(r);
    r.row.scrollIntoView({
      block: "nearest",
      behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth",
    });
    r.toggle.focus({ preventScroll: true });
  }

  /** @param {any} entry */
  #add(entry) {
    const id = `step-detail-${this.rows.size}`;
    const toggle = h("button", {
      type: "button",
      class: "btn small toggle",
      "aria-expanded": "false",
      "aria-controls": id,
      "aria-label": `Input and output of step ${entry.stepId}`,
      text: "Details",
    });
    const status = h("td", { "data-label": "Status" });
    const attempt = h("td", { "data-label": "Attempt", class: "num" });
    const dur = h("td", { "data-label": "Duration", class: "num" });
    const errLine = h("div", { class: "err-line", hidden: true });
    const row = h(
      "tr",
      { class: "step-row" },
      h("td", { "data-label": "#", class: "num idx", text: entry.stepIndex + 1 }),
      h(
        "th",
        { scope: "row", "data-label": "Step", class: "step-id" },
        h("code", { text: entry.stepId }),
        errLine,
      ),
      status,
      h(
        "td",
        { "data-label": "Component" },
        h("code", { class: "component", text: entry.component ?? "" }),
      ),
      attempt,
      dur,
      h("td", { class: "toggle-cell" }, toggle),
    );
    const detail = h("tr", { class: "step-detail", id, hidden: true }, h("td", { colspan: "7" }));
    /** @type {any} */
    const r = {
      entry,
      row,
      detail,
      status,
      attempt,
      duration: dur,
      errLine,
      toggle,
      key: "",
      at: performance.now(),
    };
    toggle.addEventListener("click", () => this.#expand(r, r.detail.hidden));
    row.addEventListener("click", (e) => {
      if (e.target instanceof Element && e.target.closest("button, a")) return;
      this.#select(r);
    });
    this.tbody.append(row, detail);
    this.rows.set(entry.stepId, r);
    return r;
  }

  /** @param {any} r */
  #select(r) {
    for (const x of this.rows.values()) x.row.classList.toggle("selected", x === r);
    this.onSelect(r.entry.stepId);
  }

  /** @param {any} r @param {boolean} open */
  #expand(r, open) {
    r.detail.hidden = !open;
    r.toggle.setAttribute("aria-expanded", String(open));
    r.toggle.textContent = open ? "Hide" : "Details";
    r.row.classList.toggle("expanded", open);
    if (open) this.#fillDetail(r);
  }

  /** @param {any} r */
  #fill(r) {
    const e = r.entry;
    const shown = shownStepStatus(e.status, this.runStatus());
    put(r.status, badge(shown));
    r.row.className = `step-row s-${shown}${
      r.row.classList.contains("selected") ? " selected" : ""
    }${r.detail.hidden ? "" : " expanded"}`;
    r.attempt.textContent = e.attempt === undefined ? "—" : String(e.attempt);
    const err = e.result?.outcome === "failed" ? e.result.error : undefined;
    r.errLine.hidden = !err;
    r.errLine.textContent = err ? `${err.code}: ${err.message}` : "";
    this.#duration(r);
    if (!r.detail.hidden) this.#fillDetail(r);
  }

  /** @param {any} r */
  #duration(r) {
    const e = r.entry;
    if (e.durationMs === undefined) {
      r.duration.textContent = "—";
      r.duration.removeAttribute("title");
      return;
    }
    const running = e.status === "running" && !FINISHED.has(this.runStatus());
    const ms = running ? Number(e.durationMs) + (performance.now() - r.at) : Number(e.durationMs);
    r.duration.textContent = `${e.durationEstimated ? "≈ " : ""}${duration(ms)}`;
    if (e.durationEstimated) {
      r.duration.setAttribute("title", "Estimated: from when the step's inputs were ready");
    } else r.duration.removeAttribute("title");
  }

  /** @param {any} r */
  #fillDetail(r) {
    const e = r.entry;
    const input = e.input !== undefined ? jsonView(e.input, `Input of step ${e.stepId}`) : h("p", {
      class: "muted",
      text: FINISHED.has(this.runStatus()) && !e.result
        ? "The step did not run."
        : e.status === "blocked" || e.status === "runnable"
        ? "Not started yet."
        : "Not known (its inputs could not be resolved).",
    });
    const output = e.result ? resultView(e.result) : h("p", {
      class: "muted",
      text: FINISHED.has(this.runStatus())
        ? "No result."
        : e.status === "running"
        ? "Running…"
        : "No result yet.",
    });
    put(
      r.detail.firstElementChild,
      h(
        "div",
        { class: "detail-grid" },
        h("div", {}, h("h3", { text: "Input" }), input),
        h(
          "div",
          {},
          h("h3", { text: e.result?.outcome === "failed" ? "Error" : "Output" }),
          output,
        ),
      ),
      e.startedAt
        ? h(
          "p",
          { class: "muted small" },
          "Started ",
          time(e.startedAt),
          e.durationEstimated ? " (estimated)" : "",
          e.completedAt ? [", finished ", time(e.completedAt)] : "",
        )
        : null,
    );
  }

  #count() {
    /** @type {Record<string, number>} */
    const n = {};
    for (const r of this.rows.values()) {
      const st = shownStepStatus(r.entry.status, this.runStatus());
      n[st] = (n[st] ?? 0) + 1;
    }
    const order = ["running", "completed", "failed", "skipped", "runnable", "blocked", "not-run"];
    this.counts.textContent = order.filter((k) => n[k]).map((k) =>
      `${n[k]} ${said(k).toLowerCase()}`
    ).join(" · ");
  }
}
