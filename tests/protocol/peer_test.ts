import { Peer } from "../../src/protocol/peer.ts";
import { OutputLimitError, ProtocolError, TransportError } from "../../src/errors.ts";
import { recordingLogger } from "../_log.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";

const memLog = (lines: string[]) => recordingLogger(lines);

/** Two peers wired back to back through async message passing. */
function pair(logs: string[] = []) {
  // deno-lint-ignore prefer-const
  let a: Peer, b: Peer;
  a = new Peer({
    name: "a",
    log: memLog(logs),
    write: (t) => void queueMicrotask(() => b.receiveText(t)),
    onRequest: (req) => {
      if (req.method === "echo") return Promise.resolve(req.params);
      return Promise.reject(new ProtocolError(-32601, `Method not found: '${req.method}'`));
    },
  });
  b = new Peer({
    name: "b",
    log: memLog(logs),
    write: (t) => void queueMicrotask(() => a.receiveText(t)),
    onRequest: async (req) => {
      // answers after calling back into `a` while a's request is still open
      const inner = await b.request("echo", { from: "b" });
      return { got: req.params, inner };
    },
  });
  return { a, b };
}

Deno.test("Peer answers requests from the other side while its own call is open", async () => {
  const { a } = pair();
  const r = await a.request("work", { x: 1 });
  assertEquals(r, { got: { x: 1 }, inner: { from: "b" } });
});

Deno.test("Peer matches 100 concurrent responses arriving in any order", async () => {
  // deno-lint-ignore prefer-const
  let server: Peer;
  const client = new Peer({
    name: "client",
    log: memLog([]),
    write: (t) => void setTimeout(() => server.receiveText(t), Math.random() * 5),
  });
  server = new Peer({
    name: "server",
    log: memLog([]),
    write: (t) => void setTimeout(() => client.receiveText(t), Math.random() * 5),
    onRequest: (req) => Promise.resolve((req.params as { i: number }).i * 2),
  });
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => client.request("double", { i })),
  );
  assertEquals(results, Array.from({ length: 100 }, (_, i) => i * 2));
  assertEquals(client.pendingCount, 0);
});

Deno.test("Peer turns an error response into a ProtocolError with the code", async () => {
  const { b } = pair();
  const err = await assertRejects(() => b.request("nope", {}), ProtocolError, "Method not found");
  assertEquals((err as ProtocolError).code, -32601);
});

Deno.test("Peer logs and skips non-JSON lines, invalid messages and unknown ids", async () => {
  const logs: string[] = [];
  const { a } = pair(logs);
  a.receiveText("Starting...");
  a.receiveText('{"jsonrpc":"2.0","id":"nobody","result":{}}');
  a.receiveText('{"jsonrpc":"2.0","id":null,"result":{}}');
  assertEquals(await a.request("x", 1), { got: 1, inner: { from: "b" } });
  assertStringIncludes(logs.join("\n"), 'a: skipped a line that is not JSON: "Starting..."');
  assertStringIncludes(logs.join("\n"), 'unknown id "nobody"');
  assertStringIncludes(logs.join("\n"), "invalid message");
});

Deno.test("Peer fails only the call whose write failed", async () => {
  let fail = true;
  const p = new Peer({
    name: "w",
    log: memLog([]),
    write: () => {
      if (fail) return Promise.reject(new Error("Broken pipe"));
    },
  });
  await assertRejects(
    () => p.request("m", {}),
    TransportError,
    "could not send 'm' to w: Broken pipe",
  );
  fail = false;
  const pending = p.request("m", {});
  p.failPending(new TransportError("gone"));
  await assertRejects(() => pending, TransportError, "gone");
});

Deno.test("Peer.request() rejects with the signal's reason when aborted", async () => {
  const p = new Peer({ name: "w", log: memLog([]), write: () => {} });
  const ac = new AbortController();
  const r = p.request("m", {}, ac.signal);
  ac.abort(new Error("step timed out"));
  await assertRejects(() => r, Error, "step timed out");
  assert(p.pendingCount === 0);
});

Deno.test("Peer: calls sharing a signal are aborted together; answered ones and other signals' are not", async () => {
  const sent: string[] = [];
  const logs: string[] = [];
  const p = new Peer({ name: "w", log: memLog(logs), write: (t) => void sent.push(t) });
  const shared = new AbortController();
  const other = new AbortController();
  const calls = Array.from({ length: 5 }, (_, i) => p.request("m", { i }, shared.signal));
  const elsewhere = p.request("m", { i: 5 }, other.signal);
  const unsignalled = p.request("m", { i: 6 });
  const ids = sent.map((t) => JSON.parse(t).id as string);
  // calls 0 and 1 are answered before the abort: they resolve with their results
  p.receive({ jsonrpc: "2.0", id: ids[0], result: "r0" });
  p.receive({ jsonrpc: "2.0", id: ids[1], error: { code: 7, message: "no" } });
  assertEquals(await calls[0], "r0");
  await assertRejects(() => calls[1], ProtocolError, "no");
  shared.abort(new Error("run cancelled"));
  for (const c of calls.slice(2)) await assertRejects(() => c, Error, "run cancelled");
  assertEquals(p.pendingCount, 2);
  // late answers to the aborted calls are expected (debug), not unknown ids (warning)
  p.receive({ jsonrpc: "2.0", id: ids[2], result: "late" });
  assert(!logs.some((l) => l.includes("unknown id")), logs.join("\n"));
  // a signal already aborted rejects at once, without sending
  const before = sent.length;
  await assertRejects(() => p.request("m", {}, shared.signal), Error, "run cancelled");
  assertEquals(sent.length, before);
  // the other signal's call and the call without a signal are untouched
  p.receive({ jsonrpc: "2.0", id: ids[5], result: "r5" });
  p.receive({ jsonrpc: "2.0", id: ids[6], result: "r6" });
  assertEquals(await elsewhere, "r5");
  assertEquals(await unsignalled, "r6");
  other.abort(new Error("too late")); // nothing open on it any more
  assertEquals(p.pendingCount, 0);
});

Deno.test("Peer: a signal used for call after call keeps no entries of finished calls", async () => {
  const sent: string[] = [];
  const p = new Peer({ name: "w", log: memLog([]), write: (t) => void sent.push(t) });
  const ac = new AbortController();
  for (let i = 0; i < 50; i++) {
    const call = p.request("m", { i }, ac.signal);
    p.receive({ jsonrpc: "2.0", id: JSON.parse(sent[i]).id, result: i });
    assertEquals(await call, i);
  }
  const failed = p.request("m", {}, ac.signal);
  p.failPending(new TransportError("worker died"));
  await assertRejects(() => failed, TransportError, "worker died");
  // aborting now finds nothing open: no late rejections, nothing abandoned to answer
  ac.abort(new Error("x"));
  assertEquals(p.pendingCount, 0);
});

Deno.test("Peer fails an open call answered by an invalid response with that id (no hang)", async () => {
  const logs: string[] = [];
  const sent: string[] = [];
  const peer = new Peer({
    name: "step service 'w'",
    log: memLog(logs),
    write: (t) => void sent.push(t),
  });
  const bad = [
    (id: string) => ({ jsonrpc: "1.0", id, result: { output: 1 } }),
    (id: string) => ({
      jsonrpc: "2.0",
      id,
      result: { output: 1 },
      error: { code: 1, message: "x" },
    }),
    (id: string) => ({ jsonrpc: "2.0", id }),
    (id: string) => ({ jsonrpc: "2.0", id, error: { code: "x" } }),
  ];
  for (const make of bad) {
    const call = peer.request("components/execute", {});
    const id = JSON.parse(sent.at(-1)!).id;
    peer.receive(make(id));
    const err = await assertRejects(() => call, ProtocolError);
    assertEquals((err as ProtocolError).code, -32603);
    assertStringIncludes(
      err.message,
      "step service 'w' answered 'components/execute' with an invalid",
    );
  }
  assertEquals(peer.pendingCount, 0);
});

Deno.test("Peer answers an invalid request that has an id with -32600 (the worker does not wait forever)", () => {
  const sent: string[] = [];
  const peer = new Peer({ name: "p", log: memLog([]), write: (t) => void sent.push(t) });
  peer.receive({ jsonrpc: "1.0", id: "r1", method: "blobs/get", params: {} });
  assertEquals(sent.length, 1);
  const answer = JSON.parse(sent[0]);
  assertEquals(answer.id, "r1");
  assertEquals(answer.error.code, -32600);
  assertStringIncludes(answer.error.message, '`jsonrpc` must be "2.0"');
});

Deno.test("Peer: a request whose params are not JSON is rejected naming the method, not thrown", async () => {
  const sent: string[] = [];
  const peer = new Peer({ name: "the engine", log: memLog([]), write: (t) => void sent.push(t) });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const err = await assertRejects(
    () => peer.request("blobs/put", { data: cyclic }),
    TransportError,
  );
  assertEquals(
    err.message,
    "could not send 'blobs/put' to the engine: its params cannot be sent as JSON (Converting circular structure to JSON)",
  );
  await assertRejects(() => peer.request("blobs/put", { data: 1n }), TransportError);
  assertEquals(sent.length, 0);
  assertEquals(peer.pendingCount, 0);
});

Deno.test("Peer answers a request with an unreadable id (1.5, an object) with -32600 and id null", () => {
  const sent: string[] = [];
  const peer = new Peer({ name: "p", log: memLog([]), write: (t) => void sent.push(t) });
  peer.receive({ jsonrpc: "2.0", id: 1.5, method: "blobs/put", params: {} });
  peer.receive({ jsonrpc: "2.0", id: { a: 1 }, method: "blobs/put", params: {} });
  peer.receive({ jsonrpc: "2.0", id: 1.5, result: {} }); // a response: nothing to answer
  assertEquals(
    sent.map((t) => JSON.parse(t)),
    [1, 2].map(() => ({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32600, message: "Invalid Request: `id` must be a string or an integer" },
    })),
  );
});

Deno.test("Peer fails an open call whose answer line does not parse (NaN, truncated) instead of hanging", async () => {
  const sent: string[] = [];
  const logs: string[] = [];
  const peer = new Peer({
    name: "step service 'w'",
    log: memLog(logs),
    write: (t) => void sent.push(t),
  });
  const lines = [
    (id: string) => `{"jsonrpc": "2.0", "id": "${id}", "result": {"output": {"x": NaN}}}`,
    // other text around it, and the id at the end of a long line
    (id: string) => `working...{"jsonrpc": "2.0", "id": "${id}", "result": {"output": NaN}}`,
    (id: string) =>
      `{"jsonrpc":"2.0","result":{"output":"${"x".repeat(10_000)}",NaN},"id":"${id}"}`,
    (id: string) => `{"jsonrpc":"2.0","id":"${id}","result":{"output":"trunc`,
  ];
  for (const make of lines) {
    const call = peer.request("components/execute", {});
    peer.receiveText(make(JSON.parse(sent.at(-1)!).id));
    const err = await assertRejects(() => call, ProtocolError);
    assertStringIncludes(
      err.message,
      "step service 'w' answered 'components/execute' with a line that cannot be parsed as JSON (",
    );
  }
  // a non-JSON line naming no open call is still only logged
  peer.receiveText(`{"id": "not-ours", oops}`);
  assertEquals(peer.pendingCount, 0);
  assertStringIncludes(logs.join("\n"), "skipped a line that is not JSON");
});

Deno.test("Peer: an answer nested deeper than 512 levels fails its call with an OutputLimitError", async () => {
  const sent: string[] = [];
  const peer = new Peer({
    name: "step service 'w'",
    log: memLog([]),
    write: (t) => void sent.push(t),
  });
  for (const inner of ["1", "1.0"]) { // plain numbers (iterative parse), exact ones (reviver)
    const call = peer.request("components/execute", {});
    const id = JSON.parse(sent.at(-1)!).id;
    const deep = "[".repeat(200_000) + inner + "]".repeat(200_000);
    peer.receiveText(`{"jsonrpc":"2.0","id":"${id}","result":{"output":${deep}}}`);
    const err = await assertRejects(() => call, OutputLimitError);
    assertEquals(
      err.message,
      "step service 'w' answered 'components/execute' with a value nested more than 512 levels deep",
    );
    assertEquals((err as OutputLimitError).limit, { limitDepth: 512 });
  }
  // 512 levels in the output (514 in the message) are fine
  const ok = peer.request("components/execute", {});
  const id = JSON.parse(sent.at(-1)!).id;
  peer.receiveText(
    `{"jsonrpc":"2.0","id":"${id}","result":{"output":${"[".repeat(512)}${"]".repeat(512)}}}`,
  );
  await ok;
  // an error answer with deep data keeps its code and message
  const bad = peer.request("components/execute", {});
  const id2 = JSON.parse(sent.at(-1)!).id;
  peer.receiveText(
    `{"jsonrpc":"2.0","id":"${id2}","error":{"code":-32003,"message":"boom","data":${
      "[".repeat(9000)
    }${"]".repeat(9000)}}}`,
  );
  const e2 = await assertRejects(() => bad, ProtocolError) as ProtocolError;
  assertEquals([e2.code, e2.message, e2.data], [
    -32003,
    "boom (error data left out: nested more than 512 levels deep)",
    undefined,
  ]);
  // a deep request from the other side is answered -32602
  peer.receiveText(
    `{"jsonrpc":"2.0","id":"r1","method":"blobs/put","params":{"data":${"[".repeat(9000)}${
      "]".repeat(9000)
    }}}`,
  );
  const answer = JSON.parse(sent.at(-1)!);
  assertEquals(answer.id, "r1");
  assertEquals(answer.error.code, -32602);
});

Deno.test("Peer takes an answer with other text on its line; ignores our own request echoed back", async () => {
  const sent: string[] = [];
  const logs: string[] = [];
  const peer = new Peer({
    name: "step service 'w'",
    log: memLog(logs),
    write: (t) => void sent.push(t),
  });
  const call = peer.request("components/execute", {});
  const id = JSON.parse(sent.at(-1)!).id;
  // a worker printing its input to stdout: our request is not an answer
  peer.receiveText(`got ${sent.at(-1)!}`);
  peer.receiveText(`working...{"jsonrpc":"2.0","id":"${id}","result":{"output":1}} ok`);
  assertEquals(await call, { output: 1 });
  assertStringIncludes(
    logs.join("\n"),
    `the answer to 'components/execute' shared its line with other text ("working..." before and " ok" after)`,
  );
  // an unfinished line (no newline yet) holding a whole answer
  const call2 = peer.request("components/execute", {});
  const id2 = JSON.parse(sent.at(-1)!).id;
  assert(!peer.receiveUnterminated(`{"jsonrpc":"2.0","id":"${id2}","result":{"out`));
  assert(peer.receiveUnterminated(`{"jsonrpc":"2.0","id":"${id2}","result":{"output":2}}`));
  assertEquals(await call2, { output: 2 });
});
