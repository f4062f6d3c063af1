/**
 * The run's journal as server-sent events (`GET /runs/{id}/events`, resumable with
 * `Last-Event-ID`) and signals (`POST /runs/{id}/signals/{name}`); resume: resume_test.ts.
 * @module
 */
import { assert, assertEquals, assertStrictEquals, assertStringIncludes } from "../_assert.ts";
import {
  parseSseBlock,
  SCHEMA,
  type SseEvent,
  storeFlow,
  THREE_STEPS,
  waitForFile,
  withServer,
} from "./_server.ts";

/** Reads SSE events from `res` until `until` says stop (or the stream ends). */
async function readEvents(
  res: Response,
  until: (e: SseEvent, all: SseEvent[]) => boolean | Promise<boolean> = () => false,
): Promise<SseEvent[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const all: SseEvent[] = [];
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return all;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const { event: e, hasData } = parseSseBlock(block);
        if (!hasData) continue; // retry: / keep-alive comments
        all.push(e);
        if (await until(e, all)) return all;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

for (const store of ["sqlite:state.db", "memory"]) {
  Deno.test(`GET /runs/{id}/events (${store}): the journal of a finished run, then end; Last-Event-ID resumes`, () =>
    withServer({ args: ["--store", store] }, async (s) => {
      const flowId = await storeFlow(s, THREE_STEPS);
      const run = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" } });
      const runId = run.body.runId;
      const res = await fetch(`${s.url}/api/v1/runs/${runId}/events`);
      assertStrictEquals(res.status, 200);
      assertStringIncludes(res.headers.get("content-type") ?? "", "text/event-stream");
      const events = await readEvents(res);
      const types = events.map((e) => e.event);
      assertEquals(types, [
        "run_started",
        "step_completed",
        "step_completed",
        "step_completed",
        "run_completed",
        "end",
      ]);
      const ids = events.slice(0, -1).map((e) => Number(e.id));
      assertEquals(ids, [...ids].sort((a, b) => a - b));
      const first = JSON.parse(events[1].data);
      assertStrictEquals(first.runId, runId);
      assertStrictEquals(first.stepId, "msgs");
      assertEquals(JSON.parse(events.at(-1)!.data), { runId, status: "completed" });

      // after a disconnect: from the last id seen
      const again = await fetch(`${s.url}/api/v1/runs/${runId}/events`, {
        headers: { "Last-Event-ID": events[2].id! },
      });
      assertEquals((await readEvents(again)).map((e) => e.event), [
        "step_completed",
        "run_completed",
        "end",
      ]);
      const byQuery = await fetch(`${s.url}/api/v1/runs/${runId}/events?after=${events[3].id}`);
      assertEquals((await readEvents(byQuery)).map((e) => e.event), ["run_completed", "end"]);

      const missing = await s.call("GET", `/api/v1/runs/${crypto.randomUUID()}/events`);
      assertStrictEquals(missing.status, 404);
    }));
}

Deno.test("GET /runs/{id}/events follows a run live; a signal shows up in it; 409 once finished", () =>
  withServer({ args: ["--store", "memory"] }, async (s, dir) => {
    const ready = `${dir}/ready`;
    const flowId = await storeFlow(s, {
      schema: SCHEMA,
      name: "nap",
      steps: [
        { id: "nap", component: "/py/sleep", input: { ms: 60_000, ready_file: ready } },
        { id: "after", component: "/builtin/create_messages", input: { user_prompt: "done" } },
      ],
      output: { a: { $from: { step: "nap" } }, b: { $from: { step: "after" } } },
    });
    const started = await s.call("POST", "/api/v1/runs", { flowId, input: {}, wait: false });
    const runId = started.body.runId;
    await waitForFile(ready);
    const res = await fetch(`${s.url}/api/v1/runs/${runId}/events`);
    let signalled = false;
    const events = await readEvents(res, async (e) => {
      // `after` finishes at once while `nap` sleeps: the stream delivers it live
      if (e.event === "step_completed" && !signalled) {
        signalled = true;
        assertStrictEquals(
          (await s.call("GET", `/api/v1/runs/${runId}`)).body.status,
          "running",
        );
        const sig = await fetch(`${s.url}/api/v1/runs/${runId}/signals/approve`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"ok":true,"n":9007199254740993}',
        });
        assertStrictEquals(sig.status, 200);
        const text = await sig.text();
        assertStringIncludes(text, '"data":{"ok":true,"n":9007199254740993}');
        const body = JSON.parse(text);
        assertStrictEquals(body.name, "approve");
        assertStrictEquals(body.runId, runId);
      }
      if (e.event === "signal_received") {
        assertStrictEquals(JSON.parse(e.data).data.name, "approve");
        await s.call("POST", `/api/v1/runs/${runId}/cancel`);
      }
      return false;
    });
    const types = events.map((e) => e.event);
    // the step service's step also journals its start (step_started, with its attempt)
    assertEquals(types.filter((t) => t !== "step_started").slice(0, 3), [
      "run_started",
      "step_completed",
      "signal_received",
    ]);
    assert(types.includes("step_started"));
    assertStrictEquals(types.at(-1), "end");
    assertEquals(JSON.parse(events.at(-1)!.data).status, "cancelled");
    // once: the service stored the engine's end of a cancelled run a second time (two
    // run_completed events, ids 47 and 48, for one cancel of a run whose step never answered)
    assertStrictEquals(types.filter((t) => t === "run_completed").length, 1, types.join());

    const late = await s.call("POST", `/api/v1/runs/${runId}/signals/approve`, { ok: false });
    assertStrictEquals(late.status, 409);
    assertStrictEquals(late.body.code, 409);
    const empty = await s.call("POST", `/api/v1/runs/${crypto.randomUUID()}/signals/x`);
    assertStrictEquals(empty.status, 404);
  }));
