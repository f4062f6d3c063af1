/**
 * The floor for bench/protocol_roundtrip.ts: a bare newline-JSON echo over stdio (reads stdin
 * with `Deno.stdin.read`, splits lines, writes each line back with `writeSync`). No protocol.
 */
const buf = new Uint8Array(1 << 16);
let pending: Uint8Array[] = [];
for (;;) {
  const n = await Deno.stdin.read(buf);
  if (n === null) break;
  let start = 0;
  for (;;) {
    const nl = buf.subarray(0, n).indexOf(10, start);
    if (nl < 0) {
      pending.push(buf.slice(start, n));
      break;
    }
    let line = buf.subarray(start, nl + 1);
    if (pending.length > 0) {
      const parts = [...pending, line];
      line = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      let off = 0;
      for (const p of parts) {
        line.set(p, off);
        off += p.length;
      }
      pending = [];
    }
    let off = 0;
    while (off < line.length) off += Deno.stdout.writeSync(line.subarray(off));
    start = nl + 1;
  }
}
