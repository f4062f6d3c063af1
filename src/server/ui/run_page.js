// @ts-check
/// <reference lib="dom" />
// A run (`/ui/runs/{runId}`): its status, the flow graph coloured by step status, the step table
// (status, component, attempt, duration, input, output or error), the run's input and result,
// Cancel / Resume / Signal, and its journal — all kept up to date from the run's event stream.
import { api, ApiError, follow } from "./api.js";
import {
  announce,
  badge,
  between,
  duration,
  FINISHED,
  h,
  put,
  shortId,
  shownStepStatus,
  STATUS_TEXT,
  time,
} from "./dom.js";
import { showGraph } from "./graph.js";
import { jsonView, parseJson } from "./json.js";

/** Most journal entries listed (the newest are kept). */
const MAX_EVENTS = 500;

/** @param {string} status */
const said = (status) => STATUS_TEXT[/** @type {keyof typeof STATUS_TEXT} */ (status)] ?? status;

/**
 * @param {unknown} e
 * @returns {string}
 */
const messageOf = (e) => (e instanceof Error ? e.message : String(e));

/**
 * Renders run `runId` into `main` and follows it until `signal` aborts.
 * @param {HTMLElement} main
 * @param {string} runId
 * @param {AbortSignal} signal
 */
export async function runPage(main, runId, signal) {
  document.title = "Run · Stepflow";
  /** @type {any} */
  let run;
  /** @type {Record<string, any>} */
  let steps;
  try {
    [run, steps] = await Promise.all([
      api(`/runs/${encodeURIComponent(runId)}`, { signal }),
      api(`/runs/${encodeURIComponent(runId)}/steps`, { signal }).then((b) => b.steps),
    ]);
  } catch (e) {
    if (signal.aborted) return;
    const missing = e instanceof ApiError && (e.status === 404 || e.status === 400);
    put(
      main,
      crumbs(runId),
      h("h1", { text: missing ? "Run not found" : "The run could not be loaded" }),
      h("p", { class: "notice error", role: "alert", text: messageOf(e) }),
      h("p", {}, h("a", { href: "/ui", text: "Back to the runs" })),
    );
    return;
  }
  runId = run.runId;
  const flowName = run.flowName ?? "(unnamed flow)";
  document.title = `${flowName} · run ${runId.slice(0, 8)} · Stepflow`;

  // ---- header
  const statusSlot = h("span", { class: "status-slot" });
  const live = h("span", { class: "live", id: "live-state" });
  const durationCell = h("dd", { class: "num" });
  const finishedCell = h("dd");
  const meta = h(
    "dl",
    { class: "meta" },
    h(
      "div",
      {},
      h("dt", { text: "Run" }),
      h("dd", {}, h("code", { class: "id-full", text: runId })),
    ),
    h(
      "div",
      {},
      h("dt", { text: "Flow" }),
      h(
        "dd",
        {},
        h("a", { href: `/ui/flows/${run.flowId}`, text: flowName }),
        " ",
        shortId(run.flowId),
      ),
    ),
    h("div", {}, h("dt", { text: "Started" }), h("dd", {}, time(run.createdAt))),
    h("div", {}, h("dt", { text: "Finished" }), finishedCell),
    h("div", {}, h("dt", { text: "Duration" }), durationCell),
    run.parentRunId
      ? h(
        "div",
        {},
        h("dt", { text: "Started by" }),
        h(
          "dd",
          {},
          h("a", { href: `/ui/runs/${run.parentRunId}` }, "run ", shortId(run.parentRunId)),
        ),
      )
      : null,
  );
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Run actions" });
  const notice = h("div", { class: "notice", role: "status", hidden: true });
  const alertBox = h("div", { class: "notice error", role: "alert", hidden: true });
  const failure = h("div", { class: "error-box run-error", hidden: true });

  // ---- graph
  const graphWrap = h(
    "div",
    { class: "graph-wrap", tabindex: "-1" },
    h("p", { class: "muted", text: "Drawing the graph…" }),
  );
  const sizeToggle = h("button", {
    type: "button",
    class: "btn small",
    "aria-pressed": "false",
    text: "Full size",
  });
  sizeToggle.addEventListener("click", () => {
    const on = graphWrap.classList.toggle("actual");
    sizeToggle.setAttribute("aria-pressed", String(on));
  });
  const graphPanel = h(
    "section",
    { class: "panel graph-panel", "aria-labelledby": "graph-h" },
    h("div", { class: "panel-head" }, h("h2", { id: "graph-h", text: "Graph" }), sizeToggle),
    graphWrap,
    legend(),
  );

  // ---- steps
  const table = new StepTable((stepId) => graph?.select(stepId), () => run.status);
  const stepsPanel = h(
    "section",
    { class: "panel steps-panel", "aria-labelledby": "steps-h" },
    h("div", { class: "panel-head" }, h("h2", { id: "steps-h", text: "Steps" }), table.counts),
    h("div", { class: "table-wrap" }, table.el),
  );

  // ---- input and result
  const inputBody = h("div");
  const resultBody = h("div");
  const io = h(
    "div",
    { class: "io" },
    h(
      "section",
      { class: "panel", "aria-labelledby": "input-h" },
      h("h2", { id: "input-h", text: "Input" }),
      inputBody,
    ),
    h(
      "section",
      { class: "panel", "aria-labelledby": "result-h" },
      h("h2", { id: "result-h", text: "Result" }),
      resultBody,
    ),
  );

  // ---- journal
  const eventList = h("ol", { class: "events" });
  const eventCount = h("span", { class: "muted" });
  const journal = h(
    "section",
    { class: "panel", "aria-labelledby": "events-h" },
    h(
      "details",
      {},
      h(
        "summary",
        {},
        h("h2", { id: "events-h", class: "inline", text: "Events" }),
        " ",
        eventCount,
      ),
      eventList,
    ),
  );

  put(
    main,
    crumbs(runId),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, h("span", { class: "h-flow", text: flowName }), " ", statusSlot),
      live,
    ),
    meta,
    failure,
    actions,
    alertBox,
    notice,
    h("div", { class: "run-grid" }, graphPanel, stepsPanel),
    io,
    journal,
  );

  /** @type {Awaited<ReturnType<typeof showGraph>> | undefined} */
  let graph;
  showGraph(graphWrap, `/runs/${runId}/graph`, {
    label: `Flow graph of ${flowName}: each step coloured by its status`,
    signal,
    onActivate: (stepId) => table.open(stepId),
  }).then((g) => {
    graph = g;
    paintGraph();
  }).catch((e) => {
    if (!signal.aborted) {
      put(
        graphWrap,
        h("p", { class: "muted", text: `The graph could not be drawn: ${messageOf(e)}` }),
      );
    }
  });

  // ---- state → page
  const paintGraph = () => {
    for (const x of Object.values(steps)) {
      graph?.setStatus(x.stepId, shownStepStatus(x.status, run.status));
    }
  };
  let shownStatus = "";
  const showRun = () => {
    if (run.status !== shownStatus) {
      put(statusSlot, badge(run.status));
      if (shownStatus !== "") announce(`Run ${said(run.status).toLowerCase()}.`);
      shownStatus = run.status;
      renderActions();
      table.refill();
      paintGraph();
    }
    put(
      finishedCell,
      run.completedAt ? time(run.completedAt) : h("span", { class: "muted", text: "not yet" }),
    );
    tick();
    put(inputBody, jsonView(run.input, "Run input"));
    put(resultBody, resultView(run.result, run.status));
    const err = run.status === "failed" && run.result?.outcome === "failed"
      ? run.result.error
      : undefined;
    failure.hidden = !err;
    if (err) {
      put(
        failure,
        h("strong", { text: `Failed with error ${err.code ?? ""}:` }),
        " ",
        err.message ?? "",
      );
    }
  };
  const tick = () => {
    const ms = between(run.createdAt, run.completedAt);
    durationCell.textContent = run.completedAt ? duration(ms) : `${duration(ms)} so far`;
    table.tick();
  };

  /** @param {string} text @param {boolean} [isError] */
  const tell = (text, isError = false) => {
    const box = isError ? alertBox : notice;
    (isError ? notice : alertBox).hidden = true;
    box.hidden = false;
    box.textContent = text;
  };

  const renderActions = () => {
    const status = run.status;
    const active = !FINISHED.has(status);
    const interrupted = run.result?.outcome === "failed" &&
      (run.result.error?.code === 503 || run.result.error?.data?.kind === "RUN_INTERRUPTED");
    /** @type {HTMLElement[]} */
    const items = [];
    if (active) items.push(cancelControl());
    if (status === "paused" || interrupted) {
      const resume = h("button", { type: "button", class: "btn", text: "Resume run" });
      resume.addEventListener("click", async () => {
        resume.setAttribute("disabled", "");
        try {
          await api(`/runs/${runId}/resume`, { method: "POST", signal });
          tell("Run resumed.");
          refresh(true);
        } catch (e) {
          tell(`Could not resume the run: ${messageOf(e)}`, true);
        } finally {
          resume.removeAttribute("disabled");
        }
      });
      items.push(resume);
    }
    if (active) items.push(signalForm());
    if (items.length === 0) {
      items.push(
        h("p", {
          class: "muted",
          text: `This run ${
            /** @type {Record<string, string>} */ ({
              completed: "completed",
              failed: "failed",
              cancelled: "was cancelled",
            })[status] ?? `is ${status}`
          }: nothing more will happen to it.`,
        }),
      );
    }
    put(actions, items);
  };

  const cancelControl = () => {
    const start = h("button", { type: "button", class: "btn danger", text: "Cancel run…" });
    const yes = h("button", { type: "button", class: "btn danger", text: "Yes, cancel the run" });
    const no = h("button", { type: "button", class: "btn", text: "Keep it running" });
    const confirm = h(
      "div",
      { class: "confirm", role: "group", "aria-labelledby": "confirm-q", hidden: true },
      h("span", {
        id: "confirm-q",
        text: "Cancel this run? Running steps are stopped and nothing else starts.",
      }),
      yes,
      no,
    );
    start.addEventListener("click", () => {
      start.hidden = true;
      confirm.hidden = false;
      yes.focus();
    });
    no.addEventListener("click", () => {
      confirm.hidden = true;
      start.hidden = false;
      start.focus();
    });
    yes.addEventListener("click", async () => {
      yes.setAttribute("disabled", "");
      no.setAttribute("disabled", "");
      yes.textContent = "Cancelling…";
      try {
        const summary = await api(`/runs/${runId}/cancel`, { method: "POST", signal });
        run = { ...run, ...summary };
        tell("Run cancelled.");
        refresh(true);
      } catch (e) {
        tell(`Could not cancel the run: ${messageOf(e)}`, true);
        refresh(true);
      }
    });
    return h("div", { class: "cancel" }, start, confirm);
  };

  const signalForm = () => {
    const name = h("input", {
      id: "sig-name",
      name: "name",
      required: true,
      autocomplete: "off",
      spellcheck: "false",
      maxlength: "200",
    });
    const data = h("textarea", {
      id: "sig-data",
      name: "data",
      rows: "3",
      spellcheck: "false",
      placeholder: '{"approved": true}',
      "aria-describedby": "sig-help",
    });
    const help = h("p", {
      id: "sig-help",
      class: "muted small",
      text: "Any JSON; empty sends null.",
    });
    const form = h(
      "form",
      { class: "signal-form" },
      h("div", { class: "field" }, h("label", { for: "sig-name", text: "Signal name" }), name),
      h("div", { class: "field grow" }, h("label", { for: "sig-data", text: "Data" }), data, help),
      h("button", { type: "submit", class: "btn", text: "Send signal" }),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = /** @type {HTMLTextAreaElement} */ (data).value.trim();
      if (text !== "") {
        try {
          parseJson(text);
          data.removeAttribute("aria-invalid");
        } catch (err) {
          data.setAttribute("aria-invalid", "true");
          help.textContent = `Not JSON: ${messageOf(err)}`;
          data.focus();
          return;
        }
      }
      help.textContent = "Any JSON; empty sends null.";
      const n = /** @type {HTMLInputElement} */ (name).value;
      try {
        await api(`/runs/${runId}/signals/${encodeURIComponent(n)}`, {
          method: "POST",
          body: text === "" ? "null" : text,
          signal,
        });
        tell(`Signal '${n}' sent.`);
      } catch (err) {
        tell(`Could not send the signal: ${messageOf(err)}`, true);
      }
    });
    return h(
      "details",
      { class: "signal" },
      h("summary", { class: "btn", text: "Send a signal…" }),
      form,
    );
  };

  // ---- refreshing from the API (after events; at most one request at a time)
  let busy = false;
  let again = false;
  let wantRun = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let soon;
  /** @param {boolean} withRun */
  const refresh = (withRun) => {
    wantRun ||= withRun;
    if (soon !== undefined) return;
    soon = setTimeout(async () => {
      soon = undefined;
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      const getRun = wantRun;
      wantRun = false;
      try {
        const [r, st] = await Promise.all([
          getRun ? api(`/runs/${runId}`, { signal }) : undefined,
          api(`/runs/${runId}/steps`, { signal }),
        ]);
        if (r) run = r;
        steps = st.steps;
        table.update(steps);
        paintGraph();
        showRun();
      } catch (e) {
        if (!signal.aborted) tell(`Could not refresh the run: ${messageOf(e)}`, true);
      } finally {
        busy = false;
        if (again) {
          again = false;
          refresh(false);
        }
      }
    }, 150);
  };

  table.update(steps);
  showRun();
  const ticker = setInterval(tick, 1000);
  signal.addEventListener("abort", () => clearInterval(ticker));

  // ---- the event stream
  let events = 0;
  follow(runId, {
    signal,
    onState: (state, why) => {
      const text = {
        connecting: "Connecting…",
        live: "Live",
        reconnecting: "Reconnecting…",
        ended: "",
        failed: `Updates stopped${why ? `: ${why}` : ""}`,
      }[state];
      live.textContent = text;
      live.className = `live is-${state}`;
      live.hidden = state === "ended";
    },
    onEvent: (e) => {
      const d = e.data ?? {};
      if (e.event === "end") {
        if (d.status) run.status = d.status;
        refresh(true);
        return;
      }
      events++;
      eventCount.textContent = `(${events})`;
      eventList.appendChild(eventItem(d, runId));
      if (eventList.children.length > MAX_EVENTS) eventList.firstElementChild?.remove();
      if (d.runId !== runId) return; // a nested run's event: its parent's step shows it
      /** @type {string | undefined} */
      const stepStatus = {
        step_started: "running",
        step_completed: "completed",
        step_failed: "failed",
        step_skipped: "skipped",
      }[/** @type {string} */ (e.event)];
      if (stepStatus && typeof d.stepId === "string") {
        // events already shown (the stream starts with the journal so far) change nothing
        if (table.setStatus(d.stepId, stepStatus, typeof d.at === "string" ? d.at : undefined)) {
          graph?.setStatus(d.stepId, stepStatus);
          announce(`Step ${d.stepId} ${said(stepStatus).toLowerCase()}.`);
          refresh(false);
        }
      } else if (e.event === "run_started" || e.event === "run_resumed") {
        if (run.status === "queued" || run.status === "paused") {
          run.status = "running";
          showRun();
          refresh(false);
        }
      } else if (
        e.event === "run_completed" || e.event === "run_interrupted" || e.event === "run_paused"
      ) {
        if (d.data?.status) run.status = d.data.status;
        refresh(true);
      } else if (e.event === "signal_received") {
        announce(`Signal ${d.data?.name ?? ""} received.`);
      }
    },
  });
}

/** @param {string} runId */
function crumbs(runId) {
  return h(
    "nav",
    { class: "crumbs", "aria-label": "Breadcrumb" },
    h("a", { href: "/ui", text: "Runs" }),
    h("span", { "aria-hidden": "true", text: " / " }),
    h(
      "span",
      { "aria-current": "page" },
      "Run ",
      h("code", { text: runId.replaceAll("-", "").slice(0, 8) }),
    ),
  );
}

function legend() {
  return h(
    "ul",
    { class: "legend", "aria-label": "Step colours" },
    ["running", "completed", "failed", "skipped", "blocked", "not-run"].map((st) =>
      h("li", {}, badge(st))
    ),
  );
}

/**
 * The result of a run or step: the output, the error, or why it was skipped.
 * @param {any} result a FlowResult or null
 * @param {string} [status] the run's status (for "no result yet")
 */
function resultView(result, status) {
  if (!result) {
    return h("p", {
      class: "muted",
      text: status ? `No result yet: the run is ${said(status).toLowerCase()}.` : "No result yet.",
    });
  }
  if (result.outcome === "success") return jsonView(result.result, "Output");
  if (result.outcome === "skipped") {
    return h("p", {
      class: "skipped-note",
      text: `Skipped${result.reason ? `: ${result.reason}` : ""}`,
    });
  }
  const err = result.error ?? {};
  return h(
    "div",
    { class: "error-box" },
    h("p", {}, h("strong", { text: `Error ${err.code ?? ""}` }), " ", err.message ?? ""),
    err.data !== undefined ? jsonView(err.data, "Error data") : null,
  );
}

/**
 * One journal entry.
 * @param {any} d
 * @param {string} runId
 */
function eventItem(d, runId) {
  const nested = d.runId && d.runId !== runId;
  const extra = [];
  if (d.stepId !== undefined) extra.push(h("code", { text: d.stepId }));
  if (typeof d.attempt === "number" && d.attempt > 1) extra.push(` attempt ${d.attempt}`);
  if (d.data?.durationMs !== undefined) extra.push(` ${duration(Number(d.data.durationMs))}`);
  if (d.data?.error?.message) {
    extra.push(h("span", { class: "err", text: ` ${d.data.error.message}` }));
  }
  if (d.data?.name && d.type === "signal_received") extra.push(h("code", { text: d.data.name }));
  if (d.data?.status && d.type === "run_completed") extra.push(` ${d.data.status}`);
  return h(
    "li",
    {},
    time(d.at),
    " ",
    h("span", { class: "ev-type", text: String(d.type ?? "event").replaceAll("_", " ") }),
    nested
      ? h(
        "span",
        { class: "muted" },
        " in nested run ",
        h("a", { href: `/ui/runs/${d.runId}` }, shortId(d.runId)),
      )
      : null,
    " ",
    extra,
  );
}

/** The step table: a row per step and a details row (input, output or error) below each. */
class StepTable {
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
