// @ts-check
/// <reference lib="dom" />
// The run page's actions: cancel (with a confirmation), resume, and sending a signal.
import { api } from "./api.js";
import { h } from "./dom.js";
import { parseJson } from "./json.js";
import { messageOf } from "./run_view.js";

/**
 * What an action needs from the page.
 * @typedef {object} ActionContext
 * @property {string} runId
 * @property {AbortSignal} signal
 * @property {(text: string, isError?: boolean) => void} tell shows a notice (or an alert)
 * @property {(withRun: boolean) => void} refresh reloads the steps (and the run)
 */

/**
 * "Resume run" for a paused or interrupted run.
 * @param {ActionContext} ctx
 */
export const resumeButton = ({ runId, signal, tell, refresh }) => {
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
  return resume;
};

/**
 * "Cancel run…" with an inline confirmation; `onCancelled` gets the run summary the API answered.
 * @param {ActionContext} ctx
 * @param {(summary: any) => void} onCancelled
 */
export const cancelControl = ({ runId, signal, tell, refresh }, onCancelled) => {
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
      onCancelled(summary);
      tell("Run cancelled.");
      refresh(true);
    } catch (e) {
      tell(`Could not cancel the run: ${messageOf(e)}`, true);
      refresh(true);
    }
  });
  return h("div", { class: "cancel" }, start, confirm);
};

/**
 * "Send a signal…": a name and JSON data, checked before sending.
 * @param {ActionContext} ctx
 */
export const signalForm = ({ runId, signal, tell }) => {
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
