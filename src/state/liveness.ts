/**
 * Is the engine that owns a run still alive? A persistent store must never report a run as
 * `running` once its engine is gone (issue 10 item 5).
 *
 * An engine records its pid, the pid's start time (Linux `/proc/<pid>/stat`, field 22: clock
 * ticks since boot, so a reused pid is told apart) and its pid namespace (`/proc/self/ns/pid`,
 * so engines in other containers are not judged by our process table). Another process on the
 * same machine and namespace then knows at once whether the owner died. Where `/proc` cannot be
 * read (not Linux, or the process is not allowed to), or the owner is in another namespace or on
 * another host, the owner's heartbeat decides: an engine whose heartbeat is older than the stale
 * limit is dead.
 * @module
 */

/** What identifies this process to other processes on the same machine. */
export interface ProcessIdentity {
  pid: number;
  /** Start time of the pid (clock ticks since boot), when `/proc` is readable. */
  pidStart?: string;
  /** The pid namespace (`pid:[4026531836]`), when `/proc` is readable. */
  pidNs?: string;
  /** The host name, when the process may read it. */
  host?: string;
}

let self: ProcessIdentity | undefined;

/** This process's identity (computed once). Never prompts for a permission. */
export function processIdentity(): ProcessIdentity {
  if (self) return self;
  const id: ProcessIdentity = { pid: Deno.pid };
  if (mayRead("/proc")) {
    const start = pidStartTime(Deno.pid);
    if (start !== undefined) id.pidStart = start;
    try {
      id.pidNs = Deno.readLinkSync("/proc/self/ns/pid");
    } catch {
      // no namespaces: compare by pid start only
    }
  }
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      id.host = Deno.hostname();
    }
  } catch {
    // not allowed: the host stays unknown
  }
  return self = id;
}

/** What is stored about an engine that decides whether it is alive. */
export interface OwnerLiveness {
  pid?: number | null;
  pidStart?: string | null;
  pidNs?: string | null;
  /** RFC 3339. */
  heartbeatAt: string;
}

/**
 * Whether the engine described by `owner` is alive, seen from this process.
 * @param staleAfterMs a heartbeat older than this means dead (when the process cannot be checked).
 * @param nowMs the current time in ms since epoch.
 */
export function isOwnerAlive(owner: OwnerLiveness, staleAfterMs: number, nowMs: number): boolean {
  const me = processIdentity();
  if (
    owner.pid != null && owner.pidStart && owner.pidNs && me.pidNs === owner.pidNs &&
    me.pidStart !== undefined
  ) {
    // Same machine and namespace: the process table is the truth.
    return pidStartTime(owner.pid) === owner.pidStart;
  }
  const beat = Date.parse(owner.heartbeatAt);
  return !Number.isNaN(beat) && nowMs - beat <= staleAfterMs;
}

/**
 * Field 22 of `/proc/<pid>/stat` (start time), or undefined when the process does not exist or
 * has exited (a zombie not reaped yet).
 */
function pidStartTime(pid: number): string | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // the command name (field 2) is in parentheses and may hold spaces: count after the last ')'
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state: a zombie has exited); field 22 is rest[19]
  if (rest[0] === "Z" || rest[0] === "X") return undefined;
  return rest[19];
}

function mayRead(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "read", path }).state === "granted";
  } catch {
    return false;
  }
}
