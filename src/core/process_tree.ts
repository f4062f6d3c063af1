/**
 * The whole tree of processes a spawned child starts, so that stopping the child stops all of
 * them, including children that left its process group or session (`setsid()`, daemons).
 *
 * Two ways to find them (Linux; elsewhere only the child's process group is known):
 * - **cgroup v2**, where this process may create a cgroup below its own (root, or a delegated
 *   subtree): the child is moved into a cgroup of its own right after it is spawned, and every
 *   process it starts stays there whatever it does with sessions and groups; stopping signals
 *   every member and finally writes `cgroup.kill`. A process the child starts in the first
 *   moments after `spawn`, before it was moved, is not in the cgroup (found by the walk below).
 * - **a walk of `/proc`**: the descendants of the child by parent pid, remembered every second
 *   while it runs (by pid and start time, so a reused pid is never signalled). A process whose
 *   parent exited before it was seen is re-parented to init and cannot be found: the documented
 *   limit (docs/protocol.md).
 * @module
 */

/** Live trees, for {@linkcode killProcessTrees}. */
const live = new Set<ProcessTree>();

/** One tracked process and what it starts. Create with {@linkcode ProcessTree.track}. */
export class ProcessTree {
  /** pid → start time (clock ticks since boot) of the descendants seen so far. */
  readonly #seen = new Map<number, string>();
  #cgroup?: string;
  #timer?: ReturnType<typeof setInterval>;
  #released = false;

  private constructor(readonly pid: number) {}

  /** Starts tracking `pid` (just spawned): in a cgroup when possible, else by walking /proc. */
  static track(pid: number): ProcessTree {
    const tree = new ProcessTree(pid);
    live.add(tree);
    guardOrphan(pid);
    if (Deno.build.os !== "linux") return tree;
    tree.#cgroup = joinNewCgroup(pid);
    if (tree.#cgroup === undefined) {
      tree.#timer = setInterval(() => tree.#remember(), 1000);
      Deno.unrefTimer(tree.#timer);
    }
    return tree;
  }

  /** The process ids of the tree now (the child first, if alive). */
  members(): number[] {
    if (this.#cgroup !== undefined) {
      const pids = readPids(`${this.#cgroup}/cgroup.procs`);
      if (pids !== undefined) return this.#withWalk(pids);
    }
    this.#remember();
    const out = processAlive(this.pid) ? [this.pid] : [];
    for (const [pid, start] of this.#seen) {
      if (startTime(pid) === start) out.push(pid);
    }
    return out;
  }

  /** True while any process of the tree is alive. */
  alive(): boolean {
    return this.members().length > 0;
  }

  /**
   * Sends `signal` to every process of the tree and to the child's process group. SIGKILL also
   * writes `cgroup.kill` when the tree has a cgroup.
   */
  signal(signal: Deno.Signal): void {
    if (signal === "SIGKILL" && this.#cgroup !== undefined) {
      try {
        Deno.writeTextFileSync(`${this.#cgroup}/cgroup.kill`, "1");
      } catch {
        // an older kernel: signal each member below
      }
    }
    trySignal(-this.pid, signal);
    for (const pid of this.members()) trySignal(pid, signal);
  }

  /**
   * Notes the descendants the child has now (by walking /proc), so that they are found even
   * after the child exits: call it before anything that may make the child exit.
   */
  snapshot(): void {
    this.#remember();
  }

  /** Stops tracking (call once every process is gone); removes the cgroup. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    live.delete(this);
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#cgroup !== undefined) {
      try {
        Deno.removeSync(this.#cgroup);
      } catch {
        // still populated (a process survived SIGKILL in an uninterruptible sleep)
      }
    }
  }

  /** Adds the current descendants of the child (by parent pid) to what was seen. */
  #remember(): void {
    for (const [pid, start] of descendants(this.pid)) this.#seen.set(pid, start);
  }

  #withWalk(pids: number[]): number[] {
    // processes started before the child was moved into its cgroup
    this.#remember();
    const all = new Set(pids);
    for (const [pid, start] of this.#seen) if (startTime(pid) === start) all.add(pid);
    return [...all];
  }
}

/**
 * The watchdog's script: while this engine (`$1`) and the child's process group (`$2`) both
 * live, wait; when the engine is gone first, SIGKILL the group.
 */
const GUARD_SCRIPT = 'while kill -s 0 "$1" 2>/dev/null && kill -s 0 -- -"$2" 2>/dev/null; do ' +
  'sleep 1; done; kill -s 0 "$1" 2>/dev/null || kill -s KILL -- -"$2" 2>/dev/null';

/**
 * Starts a watchdog for child `pgid` (spawned `detached`: the leader of its own process group):
 * when this engine process dies without stopping it — `kill -9`, the OOM killer, a crash of the
 * runtime — the child's group is killed within about a second, so a stuck step service or MCP
 * server does not run on forever. (A graceful stop or a signal stops the tree itself, see
 * {@linkcode killProcessTrees}; then the watchdog ends within a second.) It is a `sh` loop with
 * its stdio closed and no hold on this process; skipped on Windows and where this process may
 * not run `sh` (a scoped `--allow-run`): there a child outlives an engine killed with SIGKILL, as
 * before.
 */
function guardOrphan(pgid: number): void {
  if (Deno.build.os === "windows") return;
  try {
    if (Deno.permissions.querySync({ name: "run", command: "sh" }).state !== "granted") return;
    const guard = new Deno.Command("sh", {
      args: ["-c", GUARD_SCRIPT, "stepflow-orphan-guard", String(Deno.pid), String(pgid)],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    guard.unref();
    guard.status.catch(() => {});
  } catch {
    // no sh: as before, without the watchdog
  }
}

/**
 * Sends `signal` to every tracked tree, and to every direct child of this process with its
 * process group (test servers and anything else not tracked). For a second Ctrl-C: nothing this
 * process started outlives it.
 */
export function killProcessTrees(signal: Deno.Signal): void {
  for (const tree of live) tree.signal(signal);
  for (const [pid, info] of processTable()) {
    if (info.ppid !== Deno.pid) continue;
    trySignal(info.pgrp === pid ? -pid : pid, signal);
  }
}

function trySignal(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // gone, or not ours
  }
}

/** True while `pid` exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X";
}

interface Stat {
  state: string;
  ppid: number;
  pgrp: number;
  start: string;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  // cutime cstime priority nice num_threads itrealvalue starttime ...: comm may hold spaces
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]), start: f[19] };
}

function startTime(pid: number): string | undefined {
  const s = readStat(pid);
  return s && s.state !== "Z" && s.state !== "X" ? s.start : undefined;
}

/** Every process: pid → stat (empty when /proc cannot be read). */
function processTable(): Map<number, Stat> {
  const out = new Map<number, Stat>();
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    const s = readStat(pid);
    if (s && s.state !== "Z" && s.state !== "X") out.set(pid, s);
  }
  return out;
}

/** The living descendants of `root` (pid → start time). */
function descendants(root: number): Map<number, string> {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const [pid, s] of table) {
    const list = children.get(s.ppid);
    if (list) list.push(pid);
    else children.set(s.ppid, [pid]);
  }
  const out = new Map<number, string>();
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (out.has(pid)) continue;
    out.set(pid, table.get(pid)!.start);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

function readPids(file: string): number[] | undefined {
  try {
    return Deno.readTextFileSync(file).split("\n").filter((l) => l !== "").map(Number);
  } catch {
    return undefined;
  }
}

let cgroupBase: string | null | undefined;
let cgroupCount = 0;

/**
 * The cgroup v2 directory of this process, when cgroups can be made below it; else null.
 * `STEPFLOW_PROCESS_TREE=walk` turns cgroups off (the /proc walk only).
 */
function ownCgroup(): string | null {
  if (cgroupBase !== undefined) return cgroupBase;
  cgroupBase = null;
  try {
    if (Deno.env.get("STEPFLOW_PROCESS_TREE") === "walk") return null;
  } catch {
    // not allowed to read it: the default
  }
  try {
    const line = Deno.readTextFileSync("/proc/self/cgroup").split("\n").find((l) =>
      l.startsWith("0::")
    );
    if (line === undefined) return null;
    const mount = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
      .map((l) => l.split(" "))
      .find((f) => f[f.indexOf("-") + 1] === "cgroup2");
    if (mount === undefined) return null;
    const dir = `${mount[4]}${line.slice(3) === "/" ? "" : line.slice(3)}`;
    const probe = `${dir}/stepflow-probe-${Deno.pid}`;
    Deno.mkdirSync(probe);
    Deno.removeSync(probe);
    cgroupBase = dir;
  } catch {
    cgroupBase = null;
  }
  return cgroupBase;
}

/** Moves `pid` into a new cgroup below this process's; its path, or undefined when not possible. */
function joinNewCgroup(pid: number): string | undefined {
  const base = ownCgroup();
  if (base === null) return undefined;
  const dir = `${base}/stepflow-${Deno.pid}-${++cgroupCount}`;
  try {
    Deno.mkdirSync(dir);
  } catch {
    return undefined;
  }
  try {
    Deno.writeTextFileSync(`${dir}/cgroup.procs`, String(pid));
    return dir;
  } catch {
    try {
      Deno.removeSync(dir);
    } catch {
      // ignore
    }
    return undefined;
  }
}
