/**
 * A child process's stderr read as it comes, for tests that wait for a line: `until(re)` resolves
 * once the text read so far matches `re` (so a test checks what it has read, never text still in
 * the pipe), and rejects with everything read when stderr ends without a match or after
 * `failAfterMs` (a bound on a failing test, not a wait: a match resolves at once).
 * @module
 */

/** The stderr of a running child: the text so far, a wait for a match, and the end. */
export interface StderrReader {
  /** What was read so far. */
  readonly text: string;
  /** The first match of `re` in stderr, once read; rejects when stderr ends without one. */
  until(re: RegExp, failAfterMs?: number): Promise<RegExpExecArray>;
  /** Resolves with all of stderr once it ends. */
  readonly done: Promise<string>;
}

/** Starts reading `stream` (a child's piped stderr) to its end. */
export function readStderr(stream: ReadableStream<Uint8Array>): StderrReader {
  let text = "";
  let ended = false;
  const waiters = new Set<() => void>();
  const done = (async () => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of stream) {
        text += dec.decode(chunk, { stream: true });
        for (const w of [...waiters]) w();
      }
    } finally {
      text += dec.decode();
      ended = true;
      for (const w of [...waiters]) w();
    }
    return text;
  })();
  return {
    get text() {
      return text;
    },
    done,
    until(re: RegExp, failAfterMs = 60_000): Promise<RegExpExecArray> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no match for ${re} on stderr after ${failAfterMs} ms:\n${text}`));
        }, failAfterMs);
        const check = () => {
          const m = re.exec(text);
          if (m === null && !ended) return;
          waiters.delete(check);
          clearTimeout(timer);
          if (m !== null) resolve(m);
          else reject(new Error(`stderr ended without a match for ${re}:\n${text}`));
        };
        waiters.add(check);
        check();
      });
    },
  };
}
