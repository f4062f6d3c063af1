// @ts-check
/// <reference lib="dom" />
// A run (`/ui/runs/{runId}`): its status, the flow graph coloured by step status, the step table
// (status, component, attempt, duration, input, output or error), the run's input and result,
// Cancel / Resume / Signal, and its journal — all kept up to date from the run's event stream.
// One page on purpose (about 400 lines): its parts share the run's state; the step table, the
// actions and the small views are in step_table.js, run_actions.js and run_view.js.
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
  time,
} from "./dom.js";
import { showGraph } from "./graph.js";
import { jsonView } from "./json.js";
import { cancelControl, resumeButton, signalForm } from "./run_actions.js";
import { crumbs, eventItem, legend, messageOf, resultView, said } from "./run_view.js";
import { StepTable } from "./step_table.js";

/** Most journal entries listed (the newest are kept). */
const MAX_EVENTS = 500;

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

  // `refresh` is declared below; the actions call it only after the page is set up
  const ctx = { runId, signal, tell, refresh: (/** @type {boolean} */ w) => refresh(w) };
  const renderActions = () => {
    const status = run.status;
    const active = !FINISHED.has(status);
    const interrupted = run.result?.outcome === "failed" &&
      (run.result.error?.code === 503 || run.result.error?.data?.kind === "RUN_INTERRUPTED");
    /** @type {HTMLElement[]} */
    const items = [];
    if (active) items.push(cancelControl(ctx, (summary) => (run = { ...run, ...summary })));
    if (status === "paused" || interrupted) {
      items.push(resumeButton(ctx));
    }
    if (active) items.push(signalForm(ctx));
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
