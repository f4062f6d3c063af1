/**
 * Serving a step service (a `StepflowServer`, sdk/server.ts) over stdio (stepflow 0.8 §3.4): one JSON message per line
 * on stdin/stdout, requests handled concurrently, the component's context calls sent on stdout
 * and their answers read from stdin. Logs belong on stderr.
 *
 * Performance: stdin is read with `Deno.stdin.read` into one reused buffer and split by hand;
 * replies are written with `writeSync` (a `for await` over the stream doubles the round trip),
 * the replies finished in the same turn of the event loop together (at most 16 per write, so
 * that a read of many requests does not hold back the first answers).
 * @module
 */
import { Peer } from "../src/protocol/peer.ts";
import { LineSplitter } from "../src/protocol/line_splitter.ts";
import { ProtocolError } from "../src/errors.ts";
import { EngineError, type MessageHandler } from "./context.ts";
import { logger } from "../src/log.ts";

const encoder = new TextEncoder();
/** Answers written together at most, when one read brings many requests. */
const FLUSH_EVERY = 16;
/** Largest write buffer kept for reuse, bytes (a larger batch gets its own). */
const MAX_KEPT_BUFFER = 1 << 20;

function writeAllSync(bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/**
 * Reads requests from stdin and answers on stdout until stdin closes, then waits for the calls
 * still running.
 */
export async function serveStdio(server: MessageHandler): Promise<void> {
  let outbox: string[] = [];
  // one buffer reused by every (synchronous) write: no joined string, no buffer per batch
  let out = new Uint8Array(16 * 1024);
  const flush = () => {
    if (outbox.length === 0) return;
    const batch = outbox;
    outbox = [];
    let max = batch.length;
    for (let i = 0; i < batch.length; i++) max += batch[i].length * 3; // ≤ 3 bytes a unit
    if (max > out.length) {
      if (max > MAX_KEPT_BUFFER) return writeAllSync(encoder.encode(batch.join("\n") + "\n"));
      out = new Uint8Array(Math.max(max, out.length * 2));
    }
    let off = 0;
    for (let i = 0; i < batch.length; i++) {
      off += encoder.encodeInto(batch[i], out.subarray(off)).written;
      out[off++] = 10; // \n
    }
    writeAllSync(out.subarray(0, off));
  };
  let open = 0;
  let idle: (() => void) | undefined;
  const settled = () => {
    if (--open === 0) idle?.();
  };
  const peer: Peer = new Peer({
    name: "engine",
    log: logger(server.name), // stderr, level from STEPFLOW_LOG_LEVEL (default warn)
    parse: JSON.parse,
    write: (text) => {
      // messages produced in the same turn go out in one write
      if (outbox.length === 0) queueMicrotask(flush);
      outbox.push(text);
    },
    onRequest: (req) => {
      // a synchronous component is answered synchronously; only promises are tracked
      const answer = server.handle(req.method, req.params, call);
      if (!(answer instanceof Promise)) return answer;
      open++;
      return answer.finally(settled);
    },
    onNotification: (n) => server.notify(n.method),
  });
  const call = async (method: string, params: Record<string, unknown>) => {
    try {
      return await peer.request(method, params);
    } catch (err) {
      if (err instanceof ProtocolError) throw new EngineError(err.code, err.message, err.data);
      throw err;
    }
  };
  const lines = new LineSplitter();
  const onLine = (line: string) => {
    peer.receiveText(line);
    // many requests in one read (an engine with many calls in flight): the first answers go out
    // while the rest are handled, so the engine works on them meanwhile (issue 17)
    if (outbox.length >= FLUSH_EVERY) flush();
  };
  const buf = new Uint8Array(1 << 16);
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) break;
    lines.push(buf.subarray(0, n), onLine);
    flush(); // answers ready now go out before the next read is started
  }
  // the engine is gone: calls waiting for its answers fail; then let running handlers finish
  peer.failPending(new EngineError(-32603, "the engine closed stdin"));
  if (open > 0) await new Promise<void>((r) => idle = r);
}
