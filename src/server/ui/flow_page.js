// @ts-check
/// <reference lib="dom" />
// A stored flow (`/ui/flows/{flowId}`): its graph, its steps, a form to start a run, its recent
// runs, and the flow itself as JSON.
import { api, ApiError } from "./api.js";
import { badge, between, duration, h, put, shortId, time } from "./dom.js";
import { showGraph } from "./graph.js";
import { jsonText, jsonView, parseJson } from "./json.js";

/** @param {unknown} e */
const messageOf = (e) => (e instanceof Error ? e.message : String(e));

/**
 * Renders flow `flowId` into `main`.
 * @param {HTMLElement} main
 * @param {string} flowId
 * @param {AbortSignal} signal
 */
export async function flowPage(main, flowId, signal) {
  document.title = "Flow · Stepflow";
  /** @type {any} */
  let body;
  try {
    body = await api(`/flows/${encodeURIComponent(flowId)}`, { signal });
  } catch (e) {
    if (signal.aborted) return;
    const missing = e instanceof ApiError && (e.status === 404 || e.status === 400);
    put(
      main,
      crumbs("Flow"),
      h("h1", { text: missing ? "Flow not found" : "The flow could not be loaded" }),
      h("p", { class: "notice error", role: "alert", text: messageOf(e) }),
    );
    return;
  }
  const flow = body.flow ?? {};
  const name = typeof flow.name === "string" && flow.name !== "" ? flow.name : "(unnamed flow)";
  document.title = `${name} · flow · Stepflow`;
  const steps = Array.isArray(flow.steps) ? flow.steps : [];

  const graphWrap = h(
    "div",
    { class: "graph-wrap" },
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

  const stepRows = steps.map((/** @type {any} */ st, /** @type {number} */ i) => {
    const notes = [];
    if (st.mustExecute) notes.push("must execute");
    if (st.skipIf !== undefined) notes.push("has skipIf");
    if (st.onError?.action && st.onError.action !== "fail") {
      notes.push(`onError: ${st.onError.action}`);
    }
    return h(
      "tr",
      {},
      h("td", { class: "num", "data-label": "#", text: i + 1 }),
      h("th", { scope: "row", "data-label": "Step" }, h("code", { text: String(st.id) })),
      h(
        "td",
        { "data-label": "Component" },
        h("code", { class: "component", text: String(st.component) }),
      ),
      h("td", { "data-label": "Notes", class: "muted", text: notes.join(", ") || "—" }),
    );
  });

  // start a run: the first example's input, else {}
  const example = Array.isArray(body.allExamples) && body.allExamples.length > 0
    ? body.allExamples[0]
    : undefined;
  const inputBox = h("textarea", {
    id: "run-input",
    rows: "6",
    spellcheck: "false",
    "aria-describedby": "run-input-help",
  });
  /** @type {HTMLTextAreaElement} */ (inputBox).value = jsonText(example?.input ?? {});
  const help = h("p", {
    id: "run-input-help",
    class: "muted small",
    text: example
      ? `The input of the example '${example.name}'. Any JSON.`
      : "The run's input, as JSON.",
  });
  const startForm = h(
    "form",
    { class: "start-form" },
    h("label", { for: "run-input", text: "Input" }),
    inputBox,
    help,
    h("button", { type: "submit", class: "btn primary", text: "Start run" }),
  );
  const formError = h("p", { class: "notice error", role: "alert", hidden: true });
  startForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    let input;
    try {
      input = parseJson(/** @type {HTMLTextAreaElement} */ (inputBox).value);
      inputBox.removeAttribute("aria-invalid");
    } catch (err) {
      inputBox.setAttribute("aria-invalid", "true");
      formError.hidden = false;
      formError.textContent = `The input is not JSON: ${messageOf(err)}`;
      inputBox.focus();
      return;
    }
    formError.hidden = true;
    try {
      const r = await api("/runs", {
        method: "POST",
        body: { flowId: body.flowId, input, wait: false },
        signal,
      });
      location.href = `/ui/runs/${r.runId}`;
    } catch (err) {
      formError.hidden = false;
      formError.textContent = `Could not start the run: ${messageOf(err)}`;
    }
  });

  const recent = h("tbody");
  put(
    main,
    crumbs(name),
    h("div", { class: "page-head" }, h("h1", { text: name })),
    typeof flow.description === "string" ? h("p", { class: "lead", text: flow.description }) : null,
    h(
      "dl",
      { class: "meta" },
      h(
        "div",
        {},
        h("dt", { text: "Flow id" }),
        h("dd", {}, h("code", { class: "id-full", text: body.flowId })),
      ),
      h("div", {}, h("dt", { text: "Steps" }), h("dd", { class: "num", text: steps.length })),
    ),
    h(
      "div",
      { class: "run-grid" },
      h(
        "section",
        { class: "panel graph-panel", "aria-labelledby": "graph-h" },
        h("div", { class: "panel-head" }, h("h2", { id: "graph-h", text: "Graph" }), sizeToggle),
        graphWrap,
      ),
      h(
        "div",
        { class: "stack" },
        h(
          "section",
          { class: "panel", "aria-labelledby": "steps-h" },
          h("h2", { id: "steps-h", text: "Steps" }),
          h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "steps flow-steps" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["#", "Step", "Component", "Notes"].map((t) =>
                    h("th", { scope: "col", text: t })
                  ),
                ),
              ),
              h("tbody", {}, stepRows),
            ),
          ),
        ),
        h(
          "section",
          { class: "panel", "aria-labelledby": "start-h" },
          h("h2", { id: "start-h", text: "Start a run" }),
          startForm,
          formError,
        ),
        h(
          "section",
          { class: "panel", "aria-labelledby": "recent-h" },
          h("h2", { id: "recent-h", text: "Recent runs" }),
          h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "runs compact" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["Status", "Run", "Started", "Duration"].map((t) =>
                    h("th", { scope: "col", text: t })
                  ),
                ),
              ),
              recent,
            ),
          ),
        ),
      ),
    ),
    h(
      "section",
      { class: "panel" },
      h(
        "details",
        {},
        h("summary", {}, h("h2", { class: "inline", text: "Flow definition (JSON)" })),
        jsonView(flow, "Flow definition"),
      ),
    ),
  );

  showGraph(graphWrap, `/flows/${body.flowId}/graph`, { label: `Flow graph of ${name}`, signal })
    .catch((e) => {
      if (!signal.aborted) {
        put(
          graphWrap,
          h("p", { class: "muted", text: `The graph could not be drawn: ${messageOf(e)}` }),
        );
      }
    });

  try {
    const q = new URLSearchParams({ limit: "50", rootOnly: "true" });
    if (typeof flow.name === "string") q.set("flowName", flow.name);
    const { runs } = await api(`/runs?${q}`, { signal });
    const mine = runs.filter((/** @type {any} */ r) => r.flowId === body.flowId).slice(0, 10);
    put(
      recent,
      mine.length === 0
        ? h("tr", {}, h("td", { colspan: "4", class: "muted", text: "No runs of this flow yet." }))
        : mine.map((/** @type {any} */ r) =>
          h(
            "tr",
            {},
            h("td", { "data-label": "Status" }, badge(r.status)),
            h(
              "td",
              { "data-label": "Run" },
              h(
                "a",
                { href: `/ui/runs/${r.runId}`, "aria-label": `Run ${r.runId}` },
                shortId(r.runId),
              ),
            ),
            h("td", { "data-label": "Started" }, time(r.createdAt)),
            h("td", {
              "data-label": "Duration",
              class: "num",
              text: duration(between(r.createdAt, r.completedAt)),
            }),
          )
        ),
    );
  } catch (e) {
    if (!signal.aborted) {
      put(
        recent,
        h(
          "tr",
          {},
          h("td", { colspan: "4", class: "muted", text: `Could not list runs: ${messageOf(e)}` }),
        ),
      );
    }
  }
}

/** @param {string} name */
function crumbs(name) {
  return h(
    "nav",
    { class: "crumbs", "aria-label": "Breadcrumb" },
    h("a", { href: "/ui", text: "Runs" }),
    h("span", { "aria-hidden": "true", text: " / " }),
    h("span", { "aria-current": "page", text: name }),
  );
}
