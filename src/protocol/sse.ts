/**
 * Server-sent events framing as the Stepflow HTTP transport uses it (stepflow 0.8 §3.5): each
 * event is `data: <one JSON-RPC message>` followed by a blank line. Only `data` fields are
 * read; several `data` lines of one event are joined with `\n` (the SSE standard).
 * @module
 */

/** Formats one message as an SSE event (`data: <text>\n\n`). */
export function sseEvent(text: string): string {
  return `data: ${text}\n\n`;
}

/**
 * Reads the `data` of each event from an SSE byte stream, in order.
 * @param body the response body.
 * @param stop cancels the reading (the stream is cancelled; the iterator ends).
 * @returns an async iterator of event data strings; stops at the end of the stream.
 */
export async function* readSseData(
  body: ReadableStream<Uint8Array>,
  stop?: AbortSignal,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  stop?.addEventListener("abort", cancel, { once: true });
  let buf = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        const nl = buf.indexOf("\n", start);
        if (nl < 0) break;
        let line = buf.slice(start, nl);
        start = nl + 1;
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length > 0) yield data.join("\n");
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
      }
      buf = buf.slice(start);
      if (done) break;
    }
    if (data.length > 0) yield data.join("\n");
  } finally {
    stop?.removeEventListener("abort", cancel);
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
