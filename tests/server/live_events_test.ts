/**
 * Event streams of runs executing in the service are pushed from the engine's run observers:
 * steps' starts reach the client as they happen (also the starts the journal does not keep),
 * and the ids are the journal's, so a reconnect with `Last-Event-ID` continues exactly.
 * @module
 */
import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";
import {
  parseSseBlock,
  SCHEMA,
  type SseEvent,
  storeFlow,
  waitForFile,
  withServer,
} from "./_server.ts";

/** Reads every SSE event of `res` (blocks with data) until the stream ends. */
async function readAll(res: Response): Promise<{ events: SseEvent[]; idOnly: string[] }> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: SseEvent[] = [];
  const idOnly: string[] = [];
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { events, idOnly };
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const { event: e, hasData } = parseSseBlock(block);
      if (hasData) events.push(e);
      else if (e.id !== undefined) idOnly.push(e.id);
    }
  }
}

for (const store of ["sqlite:state.db", "memory"]) {
  Deno.test(`live events (${store}): pushed from the engine, step starts included; ids are the journal's`, () =>
    withServer({ args: ["--store", store] }, async (s, dir) => {
      const ready = `${dir}/ready`;
      const flowId = await storeFlow(s, {
        schema: SCHEMA,
        name: "live",
        steps: [
          { id: "nap", component: "/py/sleep", input: { ms: 300, ready_file: ready } },
          {
            id: "msgs",
            component: "/builtin/put_blob",
            input: { data: { $from: { step: "nap" } }, blob_type: "data" },
          },
        ],
        output: { $from: { step: "msgs" } },
      });
      const started = await s.call("POST", "/api/v1/runs", { flowId, input: {}, wait: false });
      const runId = started.body.runId;
      await waitForFile(ready);
      // the stream opens while `nap` runs: `msgs` starts and finishes while it is open
      const live = await readAll(await fetch(`${s.url}/api/v1/runs/${runId}/events`));
      const types = live.events.map((e) => e.event);
      assertStrictEquals(types.at(-1), "end");
      assertEquals(JSON.parse(live.events.at(-1)!.data), { runId, status: "completed" });
      // the built-in step's start is not journaled: it comes live, without an id
      const msgsStart = live.events.findIndex((e) =>
        e.event === "step_started" && JSON.parse(e.data).stepId === "msgs"
      );
      assert(msgsStart >= 0, `no step_started of msgs in ${types.join(", ")}`);
      assertStrictEquals(live.events[msgsStart].id, undefined);
      const start = JSON.parse(live.events[msgsStart].data);
      assertEquals(
        [start.runId, start.rootRunId, start.stepIndex, start.attempt, start.data],
        [runId, runId, 1, 1, { component: "/builtin/put_blob" }],
      );
      const msgsDone = live.events.findIndex((e) =>
        e.event === "step_completed" && JSON.parse(e.data).stepId === "msgs"
      );
      assert(msgsStart < msgsDone, types.join(", "));

      // every journal event came once, with the journal's id, in id order
      const withIds = live.events.filter((e) => e.id !== undefined);
      const ids = withIds.map((e) => Number(e.id));
      assertEquals(ids, [...ids].sort((a, b) => a - b));
      assertStrictEquals(new Set(ids).size, ids.length);
      const replay = await readAll(await fetch(`${s.url}/api/v1/runs/${runId}/events`));
      const replayed = replay.events.filter((e) => e.id !== undefined);
      assertEquals(
        replayed.map((e) => [e.id, e.event, e.data]),
        withIds.map((e) => [e.id, e.event, e.data]),
      );
      // a reconnect after any live id gets exactly the rest
      for (let k = 0; k < withIds.length; k++) {
        const again = await readAll(
          await fetch(`${s.url}/api/v1/runs/${runId}/events`, {
            headers: { "Last-Event-ID": withIds[k].id! },
          }),
        );
        assertEquals(
          again.events.filter((e) => e.id !== undefined).map((e) => e.id),
          withIds.slice(k + 1).map((e) => e.id),
        );
      }
    }));
}
